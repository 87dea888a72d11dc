package config

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/flashsale/flashsale/internal/sale"
)

// Setting is one environment variable the server reads.
type Setting struct {
	Name    string
	Default string // "" when unset means off
}

// serviceDefaults are the defaults Load takes from the service, which
// states them once, and the garbage collector's (gc.go).
var serviceDefaults = map[string]string{
	"IDEMPOTENCY_KEY_TTL": strings.TrimSuffix(sale.DefaultIdempotencyKeyTTL.String(), "0m0s"),
	"GOGC":                strconv.Itoa(defaultGOGC),
	"GOMEMLIMIT":          fmt.Sprintf("%dMiB", defaultMemoryLimit>>20),
}

// Settings lists the variables of Config in order, from its tags, so that
// the server's -h cannot drift from what Load reads.
func Settings() ([]Setting, error) {
	params, err := env.GetFieldParams(&Config{})
	if err != nil {
		return nil, fmt.Errorf("list settings: %w", err)
	}
	out := make([]Setting, len(params))
	for i, p := range params {
		out[i] = Setting{Name: p.Key, Default: cmp.Or(p.DefaultValue, serviceDefaults[p.Key])}
	}
	return out, nil
}

// InEffect is a setting's value as the server runs with it.
type InEffect struct {
	Name   string
	Value  string // secrets masked; "" when off
	Source string // "default" or "environment"
}

// Effective lists every setting with the value in effect and where it
// came from, secrets masked: what `server config` prints. Call it after
// Load succeeded, so every value shown is one the server accepts.
func Effective() ([]InEffect, error) {
	settings, err := Settings()
	if err != nil {
		return nil, err
	}
	out := make([]InEffect, len(settings))
	for i, s := range settings {
		e := InEffect{Name: s.Name, Value: s.Default, Source: "default"}
		if v := os.Getenv(s.Name); v != "" {
			e.Value, e.Source = mask(s.Name, v), "environment"
		}
		out[i] = e
	}
	return out, nil
}

// hidden stands for a secret's value.
const hidden = "(set, hidden)"

var keywordPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// mask hides what must not reach a terminal or a ticket: secrets and
// tokens whole, and the password in a connection string (URL or
// keyword=value form, where pgx takes either).
func mask(name, value string) string {
	switch {
	case strings.HasSuffix(name, "SECRET") || strings.HasSuffix(name, "TOKEN") ||
		strings.Contains(name, "PASSWORD") || strings.HasSuffix(name, "_KEY") && !strings.HasSuffix(name, "PUBLIC_KEY"):
		return hidden
	case strings.HasSuffix(name, "_URL"):
		u, err := url.Parse(value)
		if err != nil || u.Scheme == "" {
			return keywordPassword.ReplaceAllString(value, "${1}xxxxx")
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return value
}
