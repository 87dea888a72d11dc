package config

import (
	"fmt"

	"github.com/caarlos0/env/v11"
)

// Setting is one environment variable the server reads.
type Setting struct {
	Name    string
	Default string // "" when unset means off
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
		out[i] = Setting{Name: p.Key, Default: p.DefaultValue}
	}
	return out, nil
}
