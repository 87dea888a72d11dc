package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flashsale/flashsale/internal/auth"
)

func TestParseAdminTokens(t *testing.T) {
	t.Parallel()
	tokens, err := auth.ParseAdminTokens([]string{"ops:0123456789abcdef-ops", " 0123456789abcdef-bare ", "ci.bot:0123456789abcdef:with-colon"})
	if err != nil {
		t.Fatal(err)
	}
	if !tokens.Configured() {
		t.Fatal("three tokens parsed, Configured() = false")
	}
	for token, want := range map[string]string{
		"0123456789abcdef-ops":        "ops",
		"0123456789abcdef-bare":       "admin", // a bare token is named admin
		"0123456789abcdef:with-colon": "ci.bot",
	} {
		if name, ok := tokens.Name(token); !ok || name != want {
			t.Errorf("Name(%q) = %q, %v; want %q", token, name, ok, want)
		}
	}
	for _, wrong := range []string{"", "ops:0123456789abcdef-ops", "0123456789abcdef-op", "0123456789abcdef-opsX"} {
		if name, ok := tokens.Name(wrong); ok {
			t.Errorf("Name(%q) = %q: a token that is not one was taken", wrong, name)
		}
	}

	var none auth.AdminTokens
	if none.Configured() {
		t.Error("no tokens, Configured() = true")
	}
	if _, ok := none.Name("anything-at-all-long"); ok {
		t.Error("no tokens, yet a token was taken")
	}

	for what, entries := range map[string][]string{
		"a short token":      {"ops:short"},
		"a name with spaces": {"the ops:0123456789abcdef-ops"},
		"an empty name":      {":0123456789abcdef-ops"},
		"a name used twice":  {"ops:0123456789abcdef-one", "ops:0123456789abcdef-two"},
		"a long name":        {strings.Repeat("n", 65) + ":0123456789abcdef-ops"},
	} {
		if _, err := auth.ParseAdminTokens(entries); err == nil {
			t.Errorf("%s: %q accepted", what, entries)
		} else if !strings.Contains(err.Error(), "ADMIN_TOKEN") {
			t.Errorf("%s: error %q does not name ADMIN_TOKEN", what, err)
		}
	}
}

const secret = "0123456789abcdef0123456789abcdef-test-only"

func sign(t *testing.T, key string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAdminSubject(t *testing.T) {
	t.Parallel()
	v, err := auth.New(secret, "")
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	for what, c := range map[string]struct {
		claims    jwt.MapClaims
		role, sub string
	}{
		"role":              {jwt.MapClaims{"sub": "alice", "exp": exp, "role": "admin"}, "admin", "alice"},
		"roles":             {jwt.MapClaims{"sub": "bob", "exp": exp, "roles": []string{"shopper", "admin"}}, "admin", "bob"},
		"role and roles":    {jwt.MapClaims{"sub": "carol", "exp": exp, "role": "shopper", "roles": []string{"admin"}}, "admin", "carol"},
		"another role name": {jwt.MapClaims{"sub": "dave", "exp": exp, "role": "shop-admin"}, "shop-admin", "dave"},
	} {
		if sub, err := v.AdminSubject(sign(t, secret, c.claims), c.role); err != nil || sub != c.sub {
			t.Errorf("%s: AdminSubject = %q, %v; want %q", what, sub, err, c.sub)
		}
	}
	for what, claims := range map[string]jwt.MapClaims{
		"no role":      {"sub": "alice", "exp": exp},
		"another role": {"sub": "alice", "exp": exp, "role": "shopper"},
		"roles short":  {"sub": "alice", "exp": exp, "roles": []string{"shopper"}},
		"role as case": {"sub": "alice", "exp": exp, "role": "Admin"},
	} {
		if _, err := v.AdminSubject(sign(t, secret, claims), "admin"); !errors.Is(err, auth.ErrNotAdmin) {
			t.Errorf("%s: err %v, want ErrNotAdmin", what, err)
		}
	}
	for what, token := range map[string]string{
		"another key": sign(t, "another-secret-another-secret-32b", jwt.MapClaims{"sub": "alice", "exp": exp, "role": "admin"}),
		"expired":     sign(t, secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix(), "role": "admin"}),
		"no expiry":   sign(t, secret, jwt.MapClaims{"sub": "alice", "role": "admin"}),
		"no subject":  sign(t, secret, jwt.MapClaims{"exp": exp, "role": "admin"}),
		"garbage":     "not-a-jwt",
	} {
		sub, err := v.AdminSubject(token, "admin")
		if err == nil || errors.Is(err, auth.ErrNotAdmin) {
			t.Errorf("%s: AdminSubject = %q, %v; want an invalid token", what, sub, err)
		}
	}
	// An empty role grants nothing, whatever the token holds.
	if _, err := v.AdminSubject(sign(t, secret, jwt.MapClaims{"sub": "alice", "exp": exp, "role": ""}), ""); !errors.Is(err, auth.ErrNotAdmin) {
		t.Errorf("empty role: err %v, want ErrNotAdmin", err)
	}
}
