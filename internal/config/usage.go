package config

import (
	"cmp"
	"fmt"
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
// states them once.
var serviceDefaults = map[string]string{
	"IDEMPOTENCY_KEY_TTL": strings.TrimSuffix(sale.DefaultIdempotencyKeyTTL.String(), "0m0s"),
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
