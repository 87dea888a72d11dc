package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	for _, k := range []string{"DATABASE_URL", "HTTP_ADDR", "SALE_DURATION", "SALE_UNITS", "SALE_ITEMS",
		"PER_USER_LIMIT", "HOLD_TTL", "DB_MAX_CONNS", "DB_READ_MAX_CONNS", "DB_TIMEOUT", "DB_POOLER", "DATABASE_MIGRATION_URL",
		"ATTEMPTS_RETENTION"} {
		t.Setenv(k, "") // empty counts as unset
	}
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8080" || cfg.SaleDuration != time.Hour || cfg.SaleUnits != 10000 || cfg.SaleItems != 10000 ||
		cfg.PerUserLimit != 10 || cfg.HoldTTL != 10*time.Minute || cfg.DBMaxConns != 4 || cfg.DBReadMaxConns != 1 ||
		cfg.AttemptsRetention != 0 || !strings.Contains(cfg.DatabaseURL, "/flashsale") || cfg.DBPooler != "none" ||
		cfg.MigrationURL() != cfg.DatabaseURL {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestLoadRejects(t *testing.T) {
	// Each error names the variable, whether the value did not parse or
	// cannot work.
	cases := map[string][2]string{
		"duration too short":      {"SALE_DURATION", "500ms"},
		"duration not seconds":    {"SALE_DURATION", "1500ms"},
		"no units":                {"SALE_UNITS", "0"},
		"more items than units":   {"SALE_ITEMS", "20000"},
		"no limit":                {"PER_USER_LIMIT", "0"},
		"no hold":                 {"HOLD_TTL", "0s"},
		"not a duration":          {"HOLD_TTL", "ten minutes"},
		"no connections":          {"DB_MAX_CONNS", "0"},
		"no read connections":     {"DB_READ_MAX_CONNS", "0"},
		"negative retention":      {"ATTEMPTS_RETENTION", "-1h"},
		"negative shutdown":       {"SHUTDOWN_TIMEOUT", "-1s"},
		"port out of range":       {"HTTP_ADDR", ":80808"},
		"no port":                 {"HTTP_ADDR", "localhost"},
		"pprof port not a number": {"PPROF_ADDR", "127.0.0.1:pprof"},
		"keys shorter than holds": {"IDEMPOTENCY_KEY_TTL", "1m"},
		"keys kept for no time":   {"IDEMPOTENCY_KEY_TTL", "0"},
		"negative rate":           {"RATE_LIMIT_USER", "-1"},
		"proxy not an address":    {"TRUSTED_PROXIES", "10.0.0.0/8,proxy.local"},
		"short secret":            {"AUTH_JWT_SECRET", "hunter2"},
		"origin without scheme":   {"CORS_ALLOWED_ORIGINS", "shop.example"},
		"metrics without port":    {"METRICS_ADDR", "127.0.0.1"},
		"unknown pooler":          {"DB_POOLER", "pgbouncer"},
		"unknown log level":       {"LOG_LEVEL", "verbose"},
		"gogc not a number":       {"GOGC", "lots"},
		"memory limit in bytes":   {"GOMEMLIMIT", "100"},
		"negative ip burst":       {"RATE_LIMIT_IP_BURST", "-1"},
		// DATABASE_MIGRATION_URL is unset here.
		"pooler without direct url": {"DB_POOLER", "transaction"},
	}
	for name, kv := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(kv[0], kv[1])
			_, err := Load()
			if err == nil || !strings.Contains(err.Error(), kv[0]) {
				t.Fatalf("%s=%s: want an error naming %s, got %v", kv[0], kv[1], kv[0], err)
			}
		})
	}
}

func TestLoadPooler(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://app@pgbouncer:6432/flashsale")
	t.Setenv("DB_POOLER", "transaction")
	t.Setenv("DATABASE_MIGRATION_URL", "postgres://app@db:5432/flashsale")
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DBPooler != "transaction" || cfg.MigrationURL() != "postgres://app@db:5432/flashsale" {
		t.Fatalf("pooler settings: %+v", cfg)
	}
}

func TestParseNets(t *testing.T) {
	nets, err := ParseNets([]string{"10.0.0.0/8", " 192.168.1.7", "2001:db8::/32", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32", "::1/128"}
	for i, n := range nets {
		if n.String() != want[i] {
			t.Errorf("net %d: %s, want %s", i, n, want[i])
		}
	}
}

// An operator reads the variable, the value given and what it takes, in
// one line, never a Go field or type.
func TestLoadExplains(t *testing.T) {
	cases := []struct{ key, value, want string }{
		{"SALE_DURATION", "90", "SALE_DURATION=90 is not a duration: a number with a unit, such as 90s, 15m or 1h (units ns, us, ms, s, m, h)"},
		{"DB_MAX_CONNS", "lots", "DB_MAX_CONNS=lots is not a whole number, such as 10"},
		{"RATE_LIMIT_USER", "fast", "RATE_LIMIT_USER=fast is not a number, such as 10 or 2.5"},
		{"LOG_LEVEL", "verbose", "LOG_LEVEL=verbose is not a level: want one of debug, info, warn, error"},
		{"GOGC", "lots", "GOGC=lots is not a percentage: want a whole number from 1, such as 100 or 400 " +
			"(how much the heap grows between collections), or off"},
		{"GOMEMLIMIT", "lots", "GOMEMLIMIT=lots is not a size: want a number with a unit, such as 100MiB or 1GiB " +
			"(units B, KiB, MiB, GiB, TiB), or off"},
		{"GOMEMLIMIT", "100", "GOMEMLIMIT=100 is 100 bytes, below the 16MiB the server needs: " +
			"give a unit, such as 100MiB or 1GiB (units B, KiB, MiB, GiB, TiB)"},
		{"HOLD_TTL", "-5m", "HOLD_TTL must be at least 1ms, got -5m0s"},
	}
	for _, c := range cases {
		t.Run(c.key+"="+c.value, func(t *testing.T) {
			t.Setenv(c.key, c.value)
			_, err := Load()
			if err == nil || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
	for _, ok := range [][2]string{{"GOGC", "off"}, {"GOGC", "200"}, {"GOMEMLIMIT", "off"}, {"GOMEMLIMIT", "1GiB"},
		{"GOMEMLIMIT", "268435456"}, {"LOG_LEVEL", "DEBUG"}} {
		t.Setenv(ok[0], ok[1])
		if _, err := Load(); err != nil {
			t.Errorf("%s=%s refused: %v", ok[0], ok[1], err)
		}
		t.Setenv(ok[0], "")
	}
}

// server config shows what is in effect, secrets hidden.
func TestEffectiveMasksSecrets(t *testing.T) {
	t.Setenv("SALE_UNITS", "5")
	t.Setenv("SALE_ITEMS", "5")
	t.Setenv("DATABASE_URL", "postgres://app:s3cret@db:5432/flashsale?sslmode=disable")
	t.Setenv("DATABASE_MIGRATION_URL", "host=db user=app password=s3cret dbname=flashsale")
	t.Setenv("AUTH_JWT_SECRET", strings.Repeat("s3cret", 6))
	t.Setenv("HOLD_TTL", "")
	if _, err := Load(); err != nil {
		t.Fatal(err)
	}
	got, err := Effective()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]InEffect{
		"SALE_UNITS":             {"SALE_UNITS", "5", "environment"},
		"HOLD_TTL":               {"HOLD_TTL", "10m", "default"},
		"IDEMPOTENCY_KEY_TTL":    {"IDEMPOTENCY_KEY_TTL", "24h", "default"},
		"GOMEMLIMIT":             {"GOMEMLIMIT", "100MiB", "default"},
		"DATABASE_URL":           {"DATABASE_URL", "postgres://app:xxxxx@db:5432/flashsale?sslmode=disable", "environment"},
		"DATABASE_MIGRATION_URL": {"DATABASE_MIGRATION_URL", "host=db user=app password=xxxxx dbname=flashsale", "environment"},
		"AUTH_JWT_SECRET":        {"AUTH_JWT_SECRET", "(set, hidden)", "environment"},
		"PPROF_ADDR":             {"PPROF_ADDR", "", "default"},
	}
	for _, e := range got {
		if strings.Contains(e.Value, "s3cret") {
			t.Errorf("%s shows the secret: %s", e.Name, e.Value)
		}
		if w, ok := want[e.Name]; ok {
			if e != w {
				t.Errorf("%+v, want %+v", e, w)
			}
			delete(want, e.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("not listed: %v", want)
	}
	for _, name := range []string{"ADMIN_TOKEN", "SOME_SECRET", "PGPASSWORD"} {
		if m := mask(name, "hunter2"); m != hidden {
			t.Errorf("mask(%s) = %q", name, m)
		}
	}
}
