package rampartgorm_test

// These tests need PostgreSQL at 127.0.0.1:5432 (see internal/contribtest).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/rampartsec/rampart"
	"github.com/rampartsec/rampart/internal/contribtest"
	"github.com/rampartsec/rampart/ramparttest"
)

type User struct {
	Name string `gorm:"primaryKey"`
	Role string
}

func open(t *testing.T) (*gorm.DB, contribtest.DB, *ramparttest.Recorder) {
	t.Helper()
	a, rec := ramparttest.NewAgent(t, rampart.Config{})
	d := contribtest.Postgres(t, a)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: d.DB}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return db.Table(d.Table), d, rec
}

func TestSQLBuiltFromInputIsRefused(t *testing.T) {
	db, d, rec := open(t)
	name := contribtest.Injection
	ctx := rampart.WithUntrusted(context.Background(), "query", name)
	for _, c := range []struct {
		how string
		run func(db *gorm.DB) error
	}{
		{"Raw", func(db *gorm.DB) error {
			var us []User
			return db.Raw("SELECT * FROM " + d.Table + " WHERE name = '" + name + "'").Scan(&us).Error
		}},
		{"Where with Sprintf", func(db *gorm.DB) error {
			var us []User
			return db.Where(fmt.Sprintf("name = '%s'", name)).Find(&us).Error
		}},
		{"Exec", func(db *gorm.DB) error {
			return db.Exec("UPDATE " + d.Table + " SET role = 'admin' WHERE name = '" + name + "'").Error
		}},
		{"Updates under a Where built from input", func(db *gorm.DB) error {
			return db.Where("name = '" + name + "'").Updates(User{Role: "admin"}).Error
		}},
	} {
		t.Run(c.how, func(t *testing.T) {
			if err := c.run(db.WithContext(ctx)); !errors.Is(err, rampart.ErrBlocked) {
				t.Errorf("%s = %v, want ErrBlocked", c.how, err)
			}
			if ev := rec.Next(t); ev.Kind != rampart.KindSQLInjection || ev.Input.Value != name {
				t.Errorf("event %s %q, want sql_injection of the input", ev.Kind, ev.Input.Value)
			}
		})
	}
	var admins int64
	if err := db.Where("role = ?", "admin").Count(&admins).Error; err != nil || admins != 0 {
		t.Errorf("%d admins, %v: a refused statement reached the database", admins, err)
	}
}

func TestGORMsOwnUseRuns(t *testing.T) {
	db, d, rec := open(t)
	name := contribtest.Injection
	db = db.WithContext(rampart.WithUntrusted(context.Background(), "query", name))
	// The injection as a value, through every usual path.
	if err := db.Create(&User{Name: name, Role: "user"}).Error; err != nil {
		t.Fatalf("Create = %v", err)
	}
	var u User
	if err := db.Where("name = ?", name).First(&u).Error; err != nil || u.Name != name {
		t.Errorf("First = %+v, %v", u, err)
	}
	if err := db.Where(&User{Name: "bob"}).Updates(User{Role: "admin"}).Error; err != nil {
		t.Errorf("Updates = %v", err)
	}
	var us []User
	if err := db.Where("name IN ?", []string{"alice", "bob", name}).Order("name").Find(&us).Error; err != nil || len(us) != 3 {
		t.Errorf("Find = %+v, %v", us, err)
	}
	if err := db.Raw("SELECT * FROM "+d.Table+" WHERE name = ?", name).Scan(&us).Error; err != nil || len(us) != 1 {
		t.Errorf("Raw with an argument = %+v, %v", us, err)
	}
	if err := db.Delete(&User{}, "name = ?", name).Error; err != nil {
		t.Errorf("Delete = %v", err)
	}
	// Events are delivered in order: one from the statements above would
	// come before this marker's.
	db.Exec("DELETE FROM " + d.Table + " WHERE name = '" + name + "' -- marker")
	if ev := rec.Next(t); !strings.Contains(ev.Detail, "marker") {
		t.Errorf("GORM's own statements raised an event: %s %s", ev.Kind, ev.Detail)
	}
}
