// Package config reads the server's settings from the environment.
package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/flashsale/flashsale/internal/auth"

	"github.com/caarlos0/env/v11"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/sale"
)

// Config is the whole configuration; every field has a default that makes
// `make run` work on a developer machine. A variable set to an empty string
// counts as unset.
type Config struct {
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable"`
	// DBPooler says what stands between the server and PostgreSQL: none,
	// or transaction for a pooler that lends a PostgreSQL session per
	// transaction (PgBouncer pool_mode=transaction). Behind one the server
	// uses no named prepared statements and sends no startup parameter
	// the pooler would refuse (see internal/database).
	DBPooler string `env:"DB_POOLER" envDefault:"none"`
	// DatabaseMigrationURL, when set, is a direct connection to the same
	// database for migrations (at start and `server migrate`): goose's
	// migration lock is a session advisory lock, which a transaction
	// pooler cannot keep. Needed with DB_POOLER=transaction.
	DatabaseMigrationURL string `env:"DATABASE_MIGRATION_URL"`

	HTTPAddr       string        `env:"HTTP_ADDR" envDefault:":8080"`
	SaleDuration   time.Duration `env:"SALE_DURATION" envDefault:"1h"`
	SaleUnits      int           `env:"SALE_UNITS" envDefault:"10000"`
	SaleItems      int           `env:"SALE_ITEMS" envDefault:"10000"`
	PerUserLimit   int           `env:"PER_USER_LIMIT" envDefault:"10"`
	HoldTTL        time.Duration `env:"HOLD_TTL" envDefault:"10m"`
	DBMaxConns     int32         `env:"DB_MAX_CONNS" envDefault:"4"`      // checkouts, purchases, the scheduler
	DBReadMaxConns int32         `env:"DB_READ_MAX_CONNS" envDefault:"1"` // the reads' own pool: see cmd/server
	// How old a sale's counts or a page of items may be when answered: the
	// clients polling them in one process share one read per this long
	// (0: every request reads the database).
	ReadMaxAge     time.Duration `env:"READ_MAX_AGE" envDefault:"1s"`
	DBTimeout      time.Duration `env:"DB_TIMEOUT" envDefault:"2s"`
	ShutdownPeriod time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`
	LogLevel       string        `env:"LOG_LEVEL" envDefault:"info"`
	// The Go runtime reads these itself; they are here to be checked
	// before the server runs and shown by `server config` (see gc.go).
	GOGC       string `env:"GOGC"`
	GOMEMLIMIT string `env:"GOMEMLIMIT"`
	// PprofAddr, when set, serves net/http/pprof there (keep it private).
	PprofAddr string `env:"PPROF_ADDR"`
	// MetricsAddr, when set, serves Prometheus metrics at /metrics there.
	// Off by default: a second port is opened only when asked for, so
	// several servers on one host never collide on it, and nothing is
	// exposed beside the API unless chosen (127.0.0.1:9464 on a host,
	// :9464 inside a container on a private network).
	MetricsAddr string `env:"METRICS_ADDR"`
	// MetricsHTTPSizes adds request and response body size histograms:
	// off by default, since they double a scrape's size for a figure a
	// sale's operator does not watch.
	MetricsHTTPSizes bool `env:"METRICS_HTTP_SIZES" envDefault:"false"`

	// How long the answer to a checkout with an Idempotency-Key is kept;
	// unset, the service's default (sale.DefaultIdempotencyKeyTTL).
	IdempotencyKeyTTL time.Duration `env:"IDEMPOTENCY_KEY_TTL"`
	// AttemptsRetention, when positive, drops the stored checkout attempts
	// of each sale once it ended (and its last hold expired) that long ago:
	// one partition of checkout_attempts per sale, dropped whole. 0 keeps
	// every attempt.
	AttemptsRetention time.Duration `env:"ATTEMPTS_RETENTION" envDefault:"0s"`

	// Token buckets per server process; a rate of 0 turns a limit off. Per
	// user: a person clicks a few times a second at most, and a shopper
	// who checks out ten items as fast as the answers come needs a burst
	// of about 20; a script sending hundreds a second is held to 10/s. Per
	// client address: off, because in a flash sale many real shoppers share
	// one address (mobile carriers' NAT, offices, campuses), and a front
	// proxy usually limits addresses already.
	RateLimitUser      float64 `env:"RATE_LIMIT_USER" envDefault:"10"`
	RateLimitUserBurst int     `env:"RATE_LIMIT_USER_BURST" envDefault:"20"`
	RateLimitIP        float64 `env:"RATE_LIMIT_IP" envDefault:"0"`
	RateLimitIPBurst   int     `env:"RATE_LIMIT_IP_BURST" envDefault:"0"`
	// TrustedProxies lists the addresses (CIDR or single IP) whose
	// X-Forwarded-For is believed; from anyone else the connection's
	// address is the client's.
	TrustedProxies []string `env:"TRUSTED_PROXIES"`

	// Who may act for a user: with either set, checkout, purchase and
	// /users/{id}/... need a bearer JWT whose sub is the user.
	AuthJWTSecret    string `env:"AUTH_JWT_SECRET"`
	AuthJWTPublicKey string `env:"AUTH_JWT_PUBLIC_KEY"` // a PEM file: RSA (RS256) or EC P-256 (ES256)

	// Origins allowed to call the API from a browser; empty: no CORS headers.
	CORSAllowedOrigins []string `env:"CORS_ALLOWED_ORIGINS"`

	// SaleAutogenerate: every SALE_DURATION window that no sale a shop
	// defined overlaps gets a generated sale. Off: only defined sales run.
	SaleAutogenerate bool `env:"SALE_AUTOGENERATE" envDefault:"true"`
	// SaleEditLead is how far ahead of its start a sale can still be
	// defined, replaced or deleted (docs/operating.md, "Defining a sale").
	SaleEditLead time.Duration `env:"SALE_EDIT_LEAD" envDefault:"1m"`
	// AdminTokens turn on the admin API (/admin/): comma-separated
	// name:token entries; the name is who the audit trail records.
	AdminTokens []string `env:"ADMIN_TOKEN"`
	// AdminJWTRole: with JWT auth on, a token whose "role" claim (or
	// "roles" list) holds this is an admin too; empty turns that off.
	AdminJWTRole string `env:"ADMIN_JWT_ROLE" envDefault:"admin"`

	// WebhookURLs: every event is POSTed to each (docs/webhooks.md);
	// empty: events are kept for GET /admin/events but not pushed.
	WebhookURLs []string `env:"WEBHOOK_URL"`
	// WebhookSecrets sign each delivery, one signature per secret, so a
	// secret can rotate: add the new one first, drop the old one once every
	// receiver has it.
	WebhookSecrets []string `env:"WEBHOOK_SECRET"`
	// WebhookTimeout bounds one delivery attempt.
	WebhookTimeout time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10s"`
	// WebhookRetryFor is about how long a failing delivery is retried.
	WebhookRetryFor time.Duration `env:"WEBHOOK_RETRY_FOR" envDefault:"24h"`
	// WebhookConcurrency is how many deliveries one server makes at once.
	WebhookConcurrency int `env:"WEBHOOK_CONCURRENCY" envDefault:"32"`
	// WebhookRate caps the events one server sends a second (0: no cap):
	// during a sale's burst, webhooks take a bounded share of the machine.
	WebhookRate float64 `env:"WEBHOOK_RATE" envDefault:"500"`
}

// Load parses the environment and checks the values that would otherwise
// fail later, far from their cause.
func Load() (Config, error) {
	cfg, err := env.ParseAs[Config]()
	if err != nil {
		return Config{}, explain(err) // explain.go
	}
	// Unset or empty takes the service's default; a value given, 0
	// included, is checked by Validate.
	if os.Getenv("IDEMPOTENCY_KEY_TTL") == "" {
		cfg.IdempotencyKeyTTL = sale.DefaultIdempotencyKeyTTL
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
	case !slices.Contains(database.Poolers, database.Pooler(c.DBPooler)):
		return fmt.Errorf("DB_POOLER must be one of %v, got %q", database.Poolers, c.DBPooler)
	case c.DBPooler == "transaction" && c.DatabaseMigrationURL == "":
		return fmt.Errorf("DB_POOLER=transaction needs DATABASE_MIGRATION_URL, a direct connection to the same database: " +
			"migrations hold a session advisory lock, which a transaction pooler cannot keep")
	case c.ReadMaxAge < 0:
		return fmt.Errorf("READ_MAX_AGE must not be negative, got %s", c.ReadMaxAge)
	case c.DBReadMaxConns < 1:
		return fmt.Errorf("DB_READ_MAX_CONNS must be positive, got %d", c.DBReadMaxConns)
	case c.AttemptsRetention < 0:
		return fmt.Errorf("ATTEMPTS_RETENTION must not be negative (0 keeps every attempt), got %s", c.AttemptsRetention)
	case c.DBTimeout <= 0:
		return fmt.Errorf("DB_TIMEOUT must be positive, got %s", c.DBTimeout)
	case c.ShutdownPeriod < 0:
		return fmt.Errorf("SHUTDOWN_TIMEOUT must not be negative, got %s", c.ShutdownPeriod)
	case c.IdempotencyKeyTTL < c.HoldTTL:
		return fmt.Errorf("IDEMPOTENCY_KEY_TTL must be at least HOLD_TTL (%s), got %s", c.HoldTTL, c.IdempotencyKeyTTL)
	case c.RateLimitUser < 0:
		return fmt.Errorf("RATE_LIMIT_USER must not be negative (0 turns it off), got %v", c.RateLimitUser)
	case c.RateLimitIP < 0:
		return fmt.Errorf("RATE_LIMIT_IP must not be negative (0 turns it off), got %v", c.RateLimitIP)
	case c.RateLimitUserBurst < 0:
		return fmt.Errorf("RATE_LIMIT_USER_BURST must not be negative, got %d", c.RateLimitUserBurst)
	case c.RateLimitIPBurst < 0:
		return fmt.Errorf("RATE_LIMIT_IP_BURST must not be negative, got %d", c.RateLimitIPBurst)
	case c.AuthJWTSecret != "" && c.AuthJWTPublicKey != "":
		return fmt.Errorf("set AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY, not both")
	case c.SaleEditLead < 2*time.Second || c.SaleEditLead > 24*time.Hour:
		return fmt.Errorf("SALE_EDIT_LEAD must be from 2s to 24h, got %s", c.SaleEditLead)
	case c.AuthJWTSecret != "" && len(c.AuthJWTSecret) < 32:
		// RFC 7518 3.2: an HS256 key must be at least as long as the hash.
		return fmt.Errorf("AUTH_JWT_SECRET must be at least 32 bytes, got %d", len(c.AuthJWTSecret))
	}
	if !slices.Contains(LogLevels, strings.ToLower(c.LogLevel)) {
		return fmt.Errorf("LOG_LEVEL=%s is not a level: want one of %s", c.LogLevel, strings.Join(LogLevels, ", "))
	}
	if err := checkGC(c.GOGC, c.GOMEMLIMIT); err != nil { // gc.go
		return err
	}
	if _, err := auth.ParseAdminTokens(c.AdminTokens); err != nil {
		return err
	}
	if err := c.validWebhooks(); err != nil {
		return err
	}
	if _, err := ParseNets(c.TrustedProxies); err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	for _, o := range c.CORSAllowedOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return fmt.Errorf("CORS_ALLOWED_ORIGINS: %q is not an origin like https://shop.example", o)
		}
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

// LogLevels are the values LOG_LEVEL takes, in any case.
var LogLevels = []string{"debug", "info", "warn", "error"}

// MigrationURL is the connection migrations go through.
func (c Config) MigrationURL() string {
	if c.DatabaseMigrationURL != "" {
		return c.DatabaseMigrationURL
	}
	return c.DatabaseURL
}

// ParseNets reads CIDRs or single addresses (taken as a /32 or /128).
func ParseNets(list []string) ([]*net.IPNet, error) {
	out := make([]*net.IPNet, 0, len(list))
	for _, v := range list {
		v = strings.TrimSpace(v)
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		p = p.Masked()
		out = append(out, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	return out, nil
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

func (c Config) validWebhooks() error {
	switch {
	case c.WebhookTimeout < 100*time.Millisecond || c.WebhookTimeout > 5*time.Minute:
		return fmt.Errorf("WEBHOOK_TIMEOUT must be from 100ms to 5m, got %s", c.WebhookTimeout)
	case c.WebhookRetryFor < time.Second || c.WebhookRetryFor > 30*24*time.Hour:
		return fmt.Errorf("WEBHOOK_RETRY_FOR must be from 1s to 720h, got %s", c.WebhookRetryFor)
	case c.WebhookConcurrency < 1 || c.WebhookConcurrency > 1000:
		return fmt.Errorf("WEBHOOK_CONCURRENCY must be from 1 to 1000, got %d", c.WebhookConcurrency)
	case c.WebhookRate < 0:
		return fmt.Errorf("WEBHOOK_RATE must not be negative (0 turns the cap off), got %v", c.WebhookRate)
	case len(c.WebhookURLs) > 0 && len(c.WebhookSecrets) == 0:
		return fmt.Errorf("WEBHOOK_URL needs WEBHOOK_SECRET: receivers verify every delivery's signature")
	}
	for _, s := range c.WebhookSecrets {
		if len(s) < 16 {
			return fmt.Errorf("WEBHOOK_SECRET: each secret must be at least 16 bytes, got one of %d", len(s))
		}
	}
	for _, raw := range c.WebhookURLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("WEBHOOK_URL: %q is not an http(s) URL like https://shop.example/hooks", raw)
		}
	}
	return nil
}
