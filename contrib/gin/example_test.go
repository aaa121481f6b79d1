package rampartgin_test

import (
	"context"
	"log"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/rampartsec/rampart"
	rampartgin "github.com/rampartsec/rampart/contrib/gin"
)

// One line protects every route of the router: the route template and its
// path parameters become the request's inputs.
func ExampleMiddleware() {
	agent, err := rampart.New(rampart.Config{Service: "users"})
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close(context.Background())

	router := gin.New()
	router.Use(rampartgin.Middleware(agent))
	router.GET("/users/:name", func(c *gin.Context) {
		// Guarded calls made with c.Request.Context() see the parameter
		// "name" as an input, and events name the route "/users/:name".
		c.String(http.StatusOK, c.Param("name"))
	})
	_ = http.ListenAndServe("127.0.0.1:8080", router)
}
