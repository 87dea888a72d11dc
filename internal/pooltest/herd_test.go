package pooltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// The herd: 1,000 units over 100 items, a cap of 3 per user, 32 shoppers
// spread over 4 server processes with 4 connections each, all through one
// pgbouncer with 4 PostgreSQL sessions.
const (
	servers     = 4
	units       = 1000
	items       = 100
	perUserCap  = 3
	shoppers    = 32
	serverConns = 4
	pgSessions  = 4
)

// TestHerdThroughPgBouncer runs real server processes behind pgbouncer in
// transaction pooling mode, started on an empty database as an operator
// would (they migrate it through DATABASE_MIGRATION_URL, all at once),
// sells every unit with checkouts and purchases spread over all servers,
// and checks the invariants in SQL: no unit sold twice, nobody above the
// cap, every attempt stored, no 5xx.
func TestHerdThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildServer(t)
	dbURL := emptyDatabase(t)
	p := startPgBouncer(t, dbURL, pgSessions)

	env := append([]string{
		"DATABASE_URL=" + p.URL,
		"SALE_UNITS=" + strconv.Itoa(units), "SALE_ITEMS=" + strconv.Itoa(items),
		"PER_USER_LIMIT=" + strconv.Itoa(perUserCap),
		"SALE_DURATION=" + saletest.DefaultSettings.Duration.String(),
		"DB_MAX_CONNS=" + strconv.Itoa(serverConns),
		// Rate limits are per process; this test is about the database.
		"RATE_LIMIT_USER=0", "LOG_LEVEL=warn",
	}, p.ServerEnv()...)
	urls := make([]string, servers)
	var wg sync.WaitGroup
	startErrs := make([]error, servers)
	for i := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			urls[i], startErrs[i] = startServer(ctx, t, bin, env, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(startErrs...); err != nil {
		t.Fatal(err)
	}

	got := runHerd(ctx, t, urls)
	t.Logf("herd over %d servers: %d checkouts answered (%d replayed), %d purchases, answers %v",
		servers, got.checkouts, got.replayed, len(got.purchaseIDs), got.statuses)

	direct, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	var (
		unitsSold, purchases, distinctUnits, distinctCodes, maxPerUser, attempts, sessions int64
		saleUnits                                                                          int64
	)
	err = direct.QueryRow(ctx, `SELECT
		(SELECT sum(units_total) FROM sales WHERE starts_at <= now() AND now() < ends_at),
		(SELECT count(*) FROM units WHERE sold_at IS NOT NULL),
		(SELECT count(*) FROM purchases),
		(SELECT count(DISTINCT unit_id) FROM purchases),
		(SELECT count(DISTINCT code) FROM purchases),
		(SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM purchases GROUP BY sale_id, user_id) x),
		(SELECT count(*) FROM checkout_attempts),
		(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND backend_type = 'client backend' AND pid <> pg_backend_pid())`).
		Scan(&saleUnits, &unitsSold, &purchases, &distinctUnits, &distinctCodes, &maxPerUser, &attempts, &sessions)
	if err != nil {
		t.Fatalf("read the sale's state: %v", err)
	}
	if saleUnits != units {
		t.Errorf("the current sale has %d units, want %d (one sale, whichever server created it)", saleUnits, units)
	}
	if got.serverErrors > 0 || got.transportErrors > 0 {
		t.Errorf("%d 5xx answers and %d transport errors; samples: %v", got.serverErrors, got.transportErrors, got.samples)
	}
	if unitsSold != units || purchases != units || int64(len(got.purchaseIDs)) != units {
		t.Errorf("sold: units %d, purchase rows %d, purchases answered %d; want %d each", unitsSold, purchases, len(got.purchaseIDs), units)
	}
	if distinctUnits != purchases || distinctCodes != purchases {
		t.Errorf("a unit or code sold twice: %d purchases, %d distinct units, %d distinct codes", purchases, distinctUnits, distinctCodes)
	}
	if maxPerUser > perUserCap {
		t.Errorf("a user bought %d units, cap %d", maxPerUser, perUserCap)
	}
	if want := got.checkouts - got.replayed; attempts != want {
		t.Errorf("checkout_attempts holds %d rows; %d checkouts were answered, %d of them replays", attempts, got.checkouts, got.replayed)
	}
	// 16 client connections shared pgbouncer's sessions (migrations went
	// straight to PostgreSQL, and their pools are closed by now).
	if sessions > pgSessions {
		t.Errorf("%d PostgreSQL sessions on the database, pgbouncer's pool is %d", sessions, pgSessions)
	}
}

type herdResult struct {
	checkouts, replayed           int64 // checkouts answered whose attempt is stored; replays of a key
	purchaseIDs                   map[int64]bool
	statuses                      map[int]int64
	serverErrors, transportErrors int64
	samples                       []string
}

// runHerd sends shoppers at the servers until the sale is sold out. Each
// shopper checks out on one server and buys on the next, so holds cross
// processes; every fifth checkout carries an Idempotency-Key and is sent
// again to a third server, which must replay the same answer.
func runHerd(ctx context.Context, t *testing.T, urls []string) herdResult {
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: shoppers, Proxy: nil},
	}
	var (
		nextUser atomic.Int64
		mu       sync.Mutex
		res      = herdResult{purchaseIDs: map[int64]bool{}, statuses: map[int]int64{}}
		wg       sync.WaitGroup
	)
	record := func(status int, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			res.transportErrors++
			if len(res.samples) < 5 {
				res.samples = append(res.samples, err.Error())
			}
		case status >= 500:
			res.serverErrors++
		}
		res.statuses[status]++
	}
	for w := range shoppers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(w), 9))
		shopper:
			for ctx.Err() == nil {
				n := nextUser.Add(1)
				user, srv := fmt.Sprintf("pool-user-%d", n), int(n)%len(urls)
				for tries := 0; ; tries++ {
					key := ""
					if rng.IntN(5) == 0 {
						key = randomKey()
					}
					item := 1 + rng.IntN(items)
					a, err := checkout(ctx, client, urls[srv], user, item, key)
					record(a.status, err)
					if err != nil || a.status >= 500 {
						return
					}
					mu.Lock()
					res.checkouts++
					mu.Unlock()
					if key != "" {
						again, err := checkout(ctx, client, urls[(srv+2)%len(urls)], user, item, key)
						record(again.status, err)
						if err == nil && (!again.replayed || again.status != a.status || again.code != a.code) {
							t.Errorf("key %s replayed on another server as %d %q (replayed %v), first answer %d %q",
								key, again.status, again.code, again.replayed, a.status, a.code)
						}
						mu.Lock()
						res.checkouts++
						res.replayed++
						mu.Unlock()
					}
					switch {
					case a.status == http.StatusCreated:
						id, status, err := purchase(ctx, client, urls[(srv+1)%len(urls)], a.code)
						record(status, err)
						if err != nil || status != http.StatusOK {
							if err == nil {
								t.Errorf("purchase of a fresh hold answered %d", status)
							}
							return
						}
						mu.Lock()
						res.purchaseIDs[id] = true
						mu.Unlock()
					case a.code == "sold_out":
						return
					case a.code == "user_limit_reached" || tries > 20:
						continue shopper
					case a.code == "item_unavailable":
					default:
						t.Errorf("checkout answered %d %s", a.status, a.code)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return res
}

type checkoutAnswer struct {
	status   int
	code     string // the hold code of a 201, else the error code
	replayed bool
}

func checkout(ctx context.Context, client *http.Client, base, user string, item int, key string) (checkoutAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		fmt.Sprintf("%s/checkout?user_id=%s&id=%d", base, user, item), nil)
	if err != nil {
		return checkoutAnswer{}, err
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return checkoutAnswer{}, err
	}
	defer resp.Body.Close()
	var body struct {
		Code  string `json:"code"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	a := checkoutAnswer{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return a, fmt.Errorf("checkout answered %d with a body that is not JSON: %w", resp.StatusCode, err)
	}
	a.code = body.Code
	if a.status != http.StatusCreated {
		a.code = body.Error.Code
	}
	return a, nil
}

func purchase(ctx context.Context, client *http.Client, base, code string) (int64, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/purchase?code="+code, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var body struct {
		PurchaseID int64 `json:"purchase_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, resp.StatusCode, fmt.Errorf("purchase answered %d with a body that is not JSON: %w", resp.StatusCode, err)
	}
	return body.PurchaseID, resp.StatusCode, nil
}

func randomKey() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// buildServer builds cmd/server once for the test.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/flashsale/flashsale/cmd/server").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/server: %v\n%s", err, out)
	}
	return bin
}

// emptyDatabase creates a database with no schema, dropped when the test
// ends: the servers migrate it.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "flashsale_pool_" + randomKey()[:12]
	url, err := database.CreateDatabase(ctx, pgtest.AdminURL(), name, "")
	if err != nil {
		t.Fatalf("%v (no PostgreSQL? set TEST_DATABASE_URL or run make test)", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := database.DropDatabase(ctx, pgtest.AdminURL(), name); err != nil {
			t.Error(err)
		}
	})
	return url
}

// startServer runs bin with env on a free loopback port until the test
// ends and waits until its /readyz answers 200. Its log is shown when the
// test fails.
func startServer(ctx context.Context, t *testing.T, bin string, env []string, n int) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	logPath := filepath.Join(t.TempDir(), "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), env...), "HTTP_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", fmt.Errorf("start server %d: %w", n, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := <-exited; err != nil {
			t.Errorf("server %d: %v", n, err)
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("server %d log:\n%s", n, b)
		}
	})
	base := "http://" + addr
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, nil
			}
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			b, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("server %d exited before it was ready (%v):\n%s", n, err, b)
		case <-ctx.Done():
			return "", fmt.Errorf("server %d not ready: %w", n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
