package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/caarlos0/env/v11"
)

// explain turns the env library's error, which names a Go field and type
// ("SaleDuration" of type "time.Duration"), into the operator's terms: the
// variable, the value given and what it takes.
func explain(err error) error {
	var perr env.ParseError
	if !errors.As(err, &perr) {
		return fmt.Errorf("read settings: %w", err)
	}
	key := perr.Name
	if f, ok := reflect.TypeFor[Config]().FieldByName(perr.Name); ok {
		if k := f.Tag.Get("env"); k != "" {
			key = k
		}
	}
	return fmt.Errorf("%s=%s is not %s", key, os.Getenv(key), accepted(perr.Type))
}

// accepted says what a value of type t is written as.
func accepted(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration: a number with a unit, such as 90s, 15m or 1h (units ns, us, ms, s, m, h)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "a whole number, such as 10"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number, such as 10 or 2.5"
	case t.Kind() == reflect.Bool:
		return "true or false"
	}
	return "a " + t.String()
}
