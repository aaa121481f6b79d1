package rampartecho_test

import (
	"context"
	"log"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/rampartsec/rampart"
	rampartecho "github.com/rampartsec/rampart/contrib/echo"
)

// One line protects every route of the server: the route template and its
// path parameters become the request's inputs.
func ExampleMiddleware() {
	agent, err := rampart.New(rampart.Config{Service: "users"})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())

	e := echo.New()
	e.Use(rampartecho.Middleware(agent))
	e.GET("/users/:name", func(c echo.Context) error {
		// Guarded calls made with c.Request().Context() see the
		// parameter "name" as an input.
		return c.String(http.StatusOK, c.Param("name"))
	})
	_ = e.Start("127.0.0.1:8080")
}
