package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-only"

// token signs claims for sub, valid for an hour unless changed.
func token(t *testing.T, method jwt.SigningMethod, key any, sub string, change func(*jwt.RegisteredClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}
	if change != nil {
		change(&c)
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// send is a request with an optional bearer token and extra headers.
func send(t *testing.T, method, url, bearer string, headers ...string) apitest.Reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	r, err := apitest.SendRequest(apitest.Client, req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func authServer(t *testing.T, v *auth.Verifier) *apitest.Server {
	t.Helper()
	opts := apitest.WeekLong(sale.Settings{Units: 40, Items: 4, PerUserLimit: 10, HoldTTL: time.Hour})
	opts.HTTP.Auth = v
	return apitest.Start(t, opts)
}

func TestAuthWithSharedSecret(t *testing.T) {
	t.Parallel()
	v, err := auth.New(testSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := authServer(t, v)
	key := []byte(testSecret)
	alice := token(t, jwt.SigningMethodHS256, key, "alice", nil)
	bob := token(t, jwt.SigningMethodHS256, key, "bob", nil)

	unauthorized := map[string]string{
		"no token":      "",
		"garbage":       "not-a-jwt",
		"wrong secret":  token(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-32b"), "alice", nil),
		"expired":       token(t, jwt.SigningMethodHS256, key, "alice", func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }),
		"not yet valid": token(t, jwt.SigningMethodHS256, key, "alice", func(c *jwt.RegisteredClaims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) }),
		"no expiry":     token(t, jwt.SigningMethodHS256, key, "alice", func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }),
		"no subject":    token(t, jwt.SigningMethodHS256, key, "", nil),
		"alg none":      token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "alice", nil),
	}
	for name, tok := range unauthorized {
		for _, target := range []struct{ method, path string }{
			{http.MethodPost, "/checkout?user_id=alice&id=1"},
			{http.MethodPost, "/purchase?code=whatever"},
			{http.MethodGet, "/users/alice/purchases"},
		} {
			r := send(t, target.method, srv.URL+target.path, tok)
			apitest.Expect(t, name+": "+target.path, r, http.StatusUnauthorized, "unauthorized")
			if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer ") {
				t.Errorf("%s: WWW-Authenticate = %q", name, h)
			}
		}
	}

	// bob cannot act as alice.
	apitest.Expect(t, "bob checks out as alice", send(t, http.MethodPost, srv.URL+"/checkout?user_id=alice&id=1", bob),
		http.StatusForbidden, "forbidden")
	apitest.Expect(t, "bob lists alice's purchases", send(t, http.MethodGet, srv.URL+"/users/alice/purchases", bob),
		http.StatusForbidden, "forbidden")
	hold := send(t, http.MethodPost, srv.URL+"/checkout?user_id=alice&id=1", alice)
	apitest.Expect(t, "alice checks out", hold, http.StatusCreated, "")
	code := hold.Body["code"].(string)
	apitest.Expect(t, "bob buys alice's hold", send(t, http.MethodPost, apitest.PurchaseURL(srv.URL, code), bob),
		http.StatusForbidden, "forbidden")
	apitest.Expect(t, "alice buys her hold", send(t, http.MethodPost, apitest.PurchaseURL(srv.URL, code), alice),
		http.StatusOK, "")
	list := send(t, http.MethodGet, srv.URL+"/users/alice/purchases", alice)
	apitest.Expect(t, "alice lists hers", list, http.StatusOK, "")
	if apitest.Int(t, list.Body, "count") != 1 {
		t.Errorf("alice's purchases: %s", list.Raw)
	}
	// With a token, user_id may be left out: the token names the user.
	r := send(t, http.MethodPost, srv.URL+"/checkout?id=2", bob)
	apitest.Expect(t, "bob checks out without user_id", r, http.StatusCreated, "")
	if r.Body["user_id"] != "bob" {
		t.Errorf("hold for %v, want bob", r.Body["user_id"])
	}
	// Public reads need no token.
	apitest.Expect(t, "sale without a token", apitest.Get(t, srv.URL+"/sales/current"), http.StatusOK, "")
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'alice'"); n != 1 {
		t.Errorf("alice has %d attempts, want 1: refused tokens store nothing", n)
	}
}

// writePEM writes a public key as a PEM file and returns its path.
func writePEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuthWithPublicKeys(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		pub    any
		method jwt.SigningMethod
		priv   any
	}{
		{"RS256", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey},
		{"ES256", &ecKey.PublicKey, jwt.SigningMethodES256, ecKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.New("", writePEM(t, c.pub))
			if err != nil {
				t.Fatal(err)
			}
			srv := authServer(t, v)
			apitest.Expect(t, "signed by the key", send(t, http.MethodPost, srv.URL+"/checkout?user_id=carol&id=1",
				token(t, c.method, c.priv, "carol", nil)), http.StatusCreated, "")
			// An HS256 token "signed" with the public key's bytes is the
			// classic algorithm confusion; only the key's own algorithm counts.
			pemBytes, _ := os.ReadFile(writePEM(t, c.pub))
			apitest.Expect(t, "HS256 with the public key as secret", send(t, http.MethodPost, srv.URL+"/checkout?user_id=carol&id=1",
				token(t, jwt.SigningMethodHS256, pemBytes, "carol", nil)), http.StatusUnauthorized, "unauthorized")
		})
	}
}

// TestRateLimitedCheckoutsAreStored: a burst from one address gets 429s,
// and every well-formed checkout of it is still an attempt row.
func TestRateLimitedCheckoutsAreStored(t *testing.T) {
	t.Parallel()
	opts := apitest.WeekLong(sale.Settings{Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: time.Hour})
	// One token per 1,000 s: on a slow machine the burst may take seconds,
	// and no token may come back before the read over the limit below.
	opts.HTTP.Limits = httpapi.RateLimits{IPRate: 0.001, IPBurst: 100}
	srv := apitest.Start(t, opts)
	const burst = 1000
	replies := make([]apitest.Reply, burst)
	errs := make([]error, burst)
	testutil.Together(32, burst, func(i int) {
		replies[i], errs[i] = apitest.Send(apitest.Client, http.MethodPost,
			apitest.CheckoutURL(srv.URL, fmt.Sprintf("burst-%03d", i), i%30+1), "", nil)
	})
	statuses := map[int]int{}
	for i, r := range replies {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		statuses[r.Status]++
		switch r.Status {
		case http.StatusTooManyRequests:
			apitest.Expect(t, "limited", r, http.StatusTooManyRequests, "rate_limited")
			if r.Header.Get("Retry-After") != "1000" { // the next token, in seconds
				t.Errorf("Retry-After = %q, want 1000", r.Header.Get("Retry-After"))
			}
		case http.StatusCreated, http.StatusConflict:
		default:
			t.Errorf("reply %d: %d %s", i, r.Status, r.Raw)
		}
	}
	t.Logf("%d checkouts from one address: %v", burst, statuses)
	if statuses[http.StatusTooManyRequests] < burst/2 {
		t.Errorf("only %d of %d answered 429", statuses[http.StatusTooManyRequests], burst)
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts"); n != burst {
		t.Errorf("%d attempts stored, want %d", n, burst)
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts WHERE outcome = 'rate_limited'"); n != int64(statuses[http.StatusTooManyRequests]) {
		t.Errorf("%d rate_limited attempts stored, %d answered 429", n, statuses[http.StatusTooManyRequests])
	}
	// The address limit covers the other routes too (not health checks).
	apitest.Expect(t, "a read over the limit", apitest.Get(t, srv.URL+"/sales/current"), http.StatusTooManyRequests, "rate_limited")
	apitest.Expect(t, "a health check", apitest.Get(t, srv.URL+"/healthz"), http.StatusOK, "")
}

// TestUserRateLimit: one user over the limit is refused and stored; others
// are not touched.
func TestUserRateLimit(t *testing.T) {
	t.Parallel()
	opts := apitest.WeekLong(sale.Settings{Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: time.Hour})
	opts.HTTP.Limits = httpapi.RateLimits{UserRate: 1, UserBurst: 3}
	srv := apitest.Start(t, opts)
	limited := 0
	for i := range 10 {
		r := apitest.Checkout(t, srv.URL, "hot", i+1)
		if r.Status == http.StatusTooManyRequests {
			limited++
			continue
		}
		apitest.Expect(t, "hot user within the burst", r, http.StatusCreated, "")
	}
	if limited < 6 {
		t.Errorf("hot user: %d of 10 limited, want at least 6 (burst 3, 1/s)", limited)
	}
	apitest.Expect(t, "another user", apitest.Checkout(t, srv.URL, "calm", 1), http.StatusCreated, "")
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'hot' AND outcome = 'rate_limited'"); n != int64(limited) {
		t.Errorf("%d rate_limited rows, want %d", n, limited)
	}
}

// TestForwardedForFromTrustedProxiesOnly: X-Forwarded-For names the client
// only when the connection comes from a configured proxy.
func TestForwardedForFromTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		trusted string
		// with a trusted proxy, two clients behind it have separate buckets
		wantSecond int
	}{
		{"untrusted", "", http.StatusTooManyRequests},
		{"trusted loopback", "127.0.0.1", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := apitest.Options{}
			opts.HTTP.Limits = httpapi.RateLimits{IPRate: 0.001, IPBurst: 1}
			if c.trusted != "" {
				nets, err := config.ParseNets([]string{c.trusted})
				if err != nil {
					t.Fatal(err)
				}
				opts.HTTP.TrustedProxies = nets
			}
			srv := apitest.Start(t, opts)
			apitest.Expect(t, "first client", send(t, http.MethodGet, srv.URL+"/sales/current", "", "X-Forwarded-For", "203.0.113.1"), http.StatusOK, "")
			r := send(t, http.MethodGet, srv.URL+"/sales/current", "", "X-Forwarded-For", "203.0.113.2")
			if r.Status != c.wantSecond {
				t.Errorf("second client: %d %s, want %d", r.Status, r.Raw, c.wantSecond)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	opts := apitest.Options{}
	opts.HTTP.CORSOrigins = []string{"https://shop.example"}
	srv := apitest.Start(t, opts)
	r := send(t, http.MethodGet, srv.URL+"/sales/current", "", "Origin", "https://shop.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Errorf("allowed origin: headers %v", r.Header)
	}
	r = send(t, http.MethodOptions, srv.URL+"/checkout", "", "Origin", "https://shop.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "Idempotency-Key")
	if r.Status != http.StatusNoContent || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Idempotency-Key") {
		t.Errorf("preflight: %d %v", r.Status, r.Header)
	}
	r = send(t, http.MethodGet, srv.URL+"/sales/current", "", "Origin", "https://evil.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin allowed: %v", r.Header)
	}
	plain := apitest.Start(t, apitest.Options{})
	r = send(t, http.MethodGet, plain.URL+"/sales/current", "", "Origin", "https://shop.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off, yet: %v", r.Header)
	}
}

// TestOldSystemAliases: the requests the Go + Redis system documented.
func TestOldSystemAliases(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	apitest.Expect(t, "GET /health", apitest.Get(t, srv.URL+"/health"), http.StatusOK, "")
	r := apitest.Do(t, http.MethodPost, srv.URL+"/checkout?user_id=user1&item_id=item1", "", nil)
	apitest.Expect(t, "item_id=item1", r, http.StatusCreated, "")
	if r.Body["checkout_code"] == nil || r.Body["checkout_code"] != r.Body["code"] {
		t.Errorf("checkout_code %v, code %v", r.Body["checkout_code"], r.Body["code"])
	}
	if apitest.Int(t, r.Body["item"].(map[string]any), "id") != 1 {
		t.Errorf("item: %v", r.Body["item"])
	}
	p := apitest.Do(t, http.MethodPost, srv.URL+"/purchase", "application/json",
		strings.NewReader(fmt.Sprintf(`{"checkout_code": %q}`, r.Body["checkout_code"])))
	apitest.Expect(t, "purchase by checkout_code", p, http.StatusOK, "")
	for _, bad := range []string{"item", "item0", "item-1", "itemx", "Item1"} {
		apitest.Expect(t, "item_id="+bad, apitest.Do(t, http.MethodPost, srv.URL+"/checkout?user_id=user1&item_id="+bad, "", nil),
			http.StatusBadRequest, "invalid_request")
	}
}

func TestOversizedHeadersAnswerJSON(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	r := send(t, http.MethodGet, srv.URL+"/sales/current", "", "X-Padding", strings.Repeat("p", 100<<10))
	apitest.Expect(t, "100 KB of headers", r, http.StatusRequestHeaderFieldsTooLarge, "request_headers_too_large")
}
