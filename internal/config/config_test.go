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
	// Each error names the variable; a value that does not parse is
	// reported by the env library with the field's name instead.
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
		// DATABASE_MIGRATION_URL is unset here.
		"pooler without direct url": {"DB_POOLER", "transaction"},
	}
	for name, kv := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(kv[0], kv[1])
			_, err := Load()
			if err == nil || !(strings.Contains(err.Error(), kv[0]) || strings.Contains(err.Error(), `"HoldTTL"`)) {
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
