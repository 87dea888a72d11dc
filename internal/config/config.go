// Package config reads the server's settings from the environment.
package config

import (
	"fmt"
	"math"
	"net"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the whole configuration; every field has a default that makes
// `make run` work on a developer machine. A variable set to an empty string
// counts as unset.
type Config struct {
	DatabaseURL    string        `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable"`
	HTTPAddr       string        `env:"HTTP_ADDR" envDefault:":8080"`
	SaleDuration   time.Duration `env:"SALE_DURATION" envDefault:"1h"`
	SaleUnits      int           `env:"SALE_UNITS" envDefault:"10000"`
	SaleItems      int           `env:"SALE_ITEMS" envDefault:"10000"`
	PerUserLimit   int           `env:"PER_USER_LIMIT" envDefault:"10"`
	HoldTTL        time.Duration `env:"HOLD_TTL" envDefault:"10m"`
	DBMaxConns     int32         `env:"DB_MAX_CONNS" envDefault:"4"`
	DBTimeout      time.Duration `env:"DB_TIMEOUT" envDefault:"2s"`
	ShutdownPeriod time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`
	LogLevel       string        `env:"LOG_LEVEL" envDefault:"info"`
	// PprofAddr, when set, serves net/http/pprof there (keep it private).
	PprofAddr string `env:"PPROF_ADDR"`
	// MetricsAddr, when set, serves Prometheus metrics at /metrics there.
	// Off by default: a second port is opened only when asked for, so
	// several servers on one host never collide on it, and nothing is
	// exposed beside the API unless chosen (127.0.0.1:9464 on a host,
	// :9464 inside a container on a private network).
	MetricsAddr string `env:"METRICS_ADDR"`
}

// Load parses the environment and checks the values that would otherwise
// fail later, far from their cause.
func Load() (Config, error) {
	cfg, err := env.ParseAs[Config]()
	if err != nil {
		return Config{}, fmt.Errorf("read configuration: %w", err)
	}
	return cfg, cfg.Validate()
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.SaleDuration < time.Second:
		return fmt.Errorf("SALE_DURATION must be at least 1s, got %s", c.SaleDuration)
	case c.SaleDuration%time.Second != 0:
		return fmt.Errorf("SALE_DURATION must be whole seconds, got %s", c.SaleDuration)
	case c.SaleUnits < 1 || c.SaleUnits > math.MaxInt32:
		return fmt.Errorf("SALE_UNITS must be from 1 to %d, got %d", math.MaxInt32, c.SaleUnits)
	case c.SaleItems < 1 || c.SaleItems > c.SaleUnits:
		return fmt.Errorf("SALE_ITEMS must be between 1 and SALE_UNITS (%d), got %d", c.SaleUnits, c.SaleItems)
	case c.PerUserLimit < 1 || c.PerUserLimit > math.MaxInt32:
		return fmt.Errorf("PER_USER_LIMIT must be from 1 to %d, got %d", math.MaxInt32, c.PerUserLimit)
	case c.HoldTTL < time.Millisecond:
		return fmt.Errorf("HOLD_TTL must be at least 1ms, got %s", c.HoldTTL)
	case c.DBMaxConns < 1:
		return fmt.Errorf("DB_MAX_CONNS must be positive, got %d", c.DBMaxConns)
	case c.DBTimeout <= 0:
		return fmt.Errorf("DB_TIMEOUT must be positive, got %s", c.DBTimeout)
	case c.ShutdownPeriod < 0:
		return fmt.Errorf("SHUTDOWN_TIMEOUT must not be negative, got %s", c.ShutdownPeriod)
	}
	if err := validAddr(c.HTTPAddr); err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	if c.PprofAddr != "" {
		if err := validAddr(c.PprofAddr); err != nil {
			return fmt.Errorf("PPROF_ADDR: %w", err)
		}
	}
	if c.MetricsAddr != "" {
		if err := validAddr(c.MetricsAddr); err != nil {
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
	}
	return nil
}

// validAddr checks a listen address before the server connects to the
// database and migrates it, not after.
func validAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	return nil
}
