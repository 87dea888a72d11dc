package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/loadgen/deploy"
	"github.com/flashsale/flashsale/internal/process"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/webhook"
)

// Issue 17's guarantees as an operator gets them: the built server binary,
// several processes on one database, a receiver that checks every delivery
// as a shop would.
func TestWebhooksAcrossProcesses(t *testing.T) {
	t.Parallel()
	bin := buildServerRace(t)
	t.Run("delivery of a SIGKILLed server is made by another", func(t *testing.T) {
		t.Parallel()
		testKilledMidDelivery(t, bin)
	})
	t.Run("purchases through two servers", func(t *testing.T) {
		t.Parallel()
		testTwoServers(t, bin)
	})
	t.Run("herd until sold out", func(t *testing.T) {
		t.Parallel()
		testHerd(t, bin)
	})
}

const hookSecret = "process-test-secret-0123456789"

// A server dies (SIGKILL) while its delivery is in flight: the receiver
// holds the request open, so neither an answer nor a failure was ever
// recorded. Another server, started afterwards, must make the delivery:
// River's rescuer, on whichever server leads once the dead one's lease
// lapses, retries a job running longer than WEBHOOK_TIMEOUT+35s (its
// 20 s sending budget, the last POST's timeout, and margins).
func testKilledMidDelivery(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	dbURL, pool := pgtest.NewPool(t)
	recv := newReceiver(t, true)
	// A short WEBHOOK_RETRY_FOR makes the rescued attempt's retry come a
	// second later instead of ten.
	env := serverEnv(dbURL, recv.URL, 10, 10, "WEBHOOK_TIMEOUT=5s", "WEBHOOK_RETRY_FOR=20s")

	a := startServer(ctx, t, bin, env, "a")
	var held delivery
	select {
	case held = <-recv.held:
	case <-ctx.Done():
		t.Fatal("server a made no delivery")
	}
	killedAt := time.Now()
	if err := syscall.Kill(a.PID(), syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL server a: %v", err)
	}
	_ = a.Stop() // waits until it is gone
	t.Logf("held %s (event %d), SIGKILLed server a", held.Type, held.ID)

	// The kill came mid-delivery: River still has the job running, on its
	// first attempt, by a's client, with nothing recorded delivered.
	job := deliveryJob(ctx, t, pool, held.ID)
	if job.State != "running" || job.Attempt != 1 || len(job.AttemptedBy) != 1 || job.Delivered {
		t.Fatalf("after the kill, the delivery job is %+v; want running on its first attempt", job)
	}

	startServer(ctx, t, bin, env, "b")
	waitFor(ctx, t, "the held event's delivery by server b", func() (bool, string) {
		recv.checkSignatures(t)
		ok := recv.answered(held.ID) > 0
		if ok {
			return true, ""
		}
		j := deliveryJob(ctx, t, pool, held.ID)
		return false, fmt.Sprintf("job %+v", j)
	})
	t.Logf("delivered again %.1fs after the kill", time.Since(killedAt).Seconds())
	waitFor(ctx, t, "the delivery job to complete", func() (bool, string) {
		j := deliveryJob(ctx, t, pool, held.ID)
		return j.State == "completed", fmt.Sprintf("job %+v", j)
	})

	job = deliveryJob(ctx, t, pool, held.ID)
	if job.Attempt < 2 || len(job.AttemptedBy) < 2 || job.AttemptedBy[0] == job.AttemptedBy[len(job.AttemptedBy)-1] || !job.Delivered {
		t.Errorf("completed job %+v: want attempt >= 2, the last by another client than the first, the event delivered", job)
	}
	got := recv.deliveries(held.ID)
	first, last := got[0], got[len(got)-1]
	if first.Status != 0 || first.Attempt != 1 || last.Status != http.StatusNoContent || last.Attempt < 2 || last.Type != held.Type || last.Sequence != held.Sequence {
		t.Errorf("deliveries of event %d: %+v; want the first (held) attempt 1, the last answered 204, attempt >= 2, the same event", held.ID, got)
	}
	recv.checkSignatures(t)
}

// Shoppers check out on one server and buy on the other; some holds are
// never bought. Every committed purchase gets one event, and every event
// reaches the endpoint.
func testTwoServers(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	const (
		units, items = 50, 5
		shoppers     = 8
		perShopper   = 6 // every sixth hold is left unbought
	)
	dbURL, pool := pgtest.NewPool(t)
	recv := newReceiver(t, false)
	env := serverEnv(dbURL, recv.URL, units, items, "WEBHOOK_TIMEOUT=5s")
	urls := startServers(ctx, t, bin, env, 2)

	var (
		mu     sync.Mutex
		bought []int64
		wg     sync.WaitGroup
	)
	for s := range shoppers {
		wg.Go(func() {
			for i := range perShopper {
				n := s*perShopper + i
				user, item := fmt.Sprintf("two-%d", n), 1+n%items
				hold, err := apitest.Send(apitest.Client, http.MethodPost, apitest.CheckoutURL(urls[n%2], user, item), "", nil)
				if err != nil || hold.Status != http.StatusCreated {
					t.Errorf("checkout of item %d by %s: %v %d %s", item, user, err, hold.Status, hold.Raw)
					return
				}
				if i == perShopper-1 {
					continue
				}
				code, _ := hold.Body["code"].(string)
				r, err := apitest.Send(apitest.Client, http.MethodPost, apitest.PurchaseURL(urls[(n+1)%2], code), "", nil)
				if err != nil || r.Status != http.StatusOK {
					t.Errorf("purchase of %s: %v %d %s", code, err, r.Status, r.Raw)
					return
				}
				id, _ := r.Body["purchase_id"].(float64)
				mu.Lock()
				bought = append(bought, int64(id))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if want := shoppers * (perShopper - 1); len(bought) != want {
		t.Fatalf("%d purchases, want %d", len(bought), want)
	}
	waitAllDelivered(ctx, t, pool, recv)
	log := checkEventLog(ctx, t, pool, recv)
	if got := slices.Sorted(maps.Keys(log.purchaseEvents)); !slices.Equal(got, slices.Sorted(slices.Values(bought))) {
		t.Errorf("purchases with an event %v, purchases answered 200 %v", got, slices.Sorted(slices.Values(bought)))
	}
	if log.soldOut != 0 {
		t.Errorf("sale.sold_out published with units left")
	}
	var clients int
	if err := pool.QueryRow(ctx, "SELECT count(DISTINCT attempted_by[1]) FROM river_job WHERE kind = $1",
		webhook.DeliveryKind).Scan(&clients); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d purchases, %d events, delivered by %d servers", len(bought), recv.events(), clients)
}

// 64 shoppers buy every unit of a 2,000-unit sale through two servers with
// webhooks on; each purchase is delivered, and so is the sell-out, once,
// after them.
func testHerd(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	const units, items, shoppers = 2000, 200, 64
	dbURL, pool := pgtest.NewPool(t)
	recv := newReceiver(t, false)
	env := serverEnv(dbURL, recv.URL, units, items, "WEBHOOK_TIMEOUT=5s", "RATE_LIMIT_USER=0")
	urls := startServers(ctx, t, bin, env, 2)

	start := time.Now()
	bought := herd(ctx, t, urls, items, shoppers)
	sold := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	var purchases int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM purchases").Scan(&purchases); err != nil {
		t.Fatal(err)
	}
	if purchases != units || len(bought) != units {
		t.Fatalf("%d purchases stored, %d answered 200; want %d", purchases, len(bought), units)
	}
	waitAllDelivered(ctx, t, pool, recv)
	t.Logf("sold %d units in %.1fs; every event delivered %.1fs after the sell-out", units, sold.Seconds(), (time.Since(start) - sold).Seconds())

	log := checkEventLog(ctx, t, pool, recv)
	for id := range bought {
		if _, ok := log.purchaseEvents[id]; !ok {
			t.Errorf("purchase %d answered 200 has no event", id)
		}
	}
	if log.soldOut == 0 {
		t.Fatal("no sale.sold_out event")
	}
	if n := len(recv.deliveries(log.soldOut)); n != 1 {
		t.Errorf("sale.sold_out delivered %d times, want once", n)
	}
	soldOut := recv.deliveries(log.soldOut)[0]
	for pid, ev := range log.purchaseEvents {
		d := recv.deliveries(ev)[0]
		if d.SaleID == soldOut.SaleID && d.Sequence >= soldOut.Sequence {
			t.Fatalf("purchase %d's event has sequence %d, sale.sold_out %d", pid, d.Sequence, soldOut.Sequence)
		}
	}
}

// herd sends shoppers at the servers until the sale is sold out: each new
// user checks out on one server and buys on the other. It returns the ids
// of the purchases answered 200.
func herd(ctx context.Context, t *testing.T, urls []string, items, shoppers int) map[int64]bool {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: shoppers}}
	var (
		next   atomic.Int64
		mu     sync.Mutex
		bought = map[int64]bool{}
		wg     sync.WaitGroup
	)
	for s := range shoppers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(s), 17))
			for ctx.Err() == nil {
				n := int(next.Add(1))
				user, item := fmt.Sprintf("herd-%d", n), 1+rng.IntN(items)
				hold, err := apitest.Send(client, http.MethodPost, apitest.CheckoutURL(urls[n%2], user, item), "", nil)
				if err != nil {
					t.Error(err)
					return
				}
				switch code := apitest.ErrorCode(hold.Body); {
				case hold.Status == http.StatusCreated:
				case code == "sold_out":
					return
				case code == "item_unavailable":
					continue
				default:
					t.Errorf("checkout answered %d %s", hold.Status, hold.Raw)
					return
				}
				code, _ := hold.Body["code"].(string)
				r, err := apitest.Send(client, http.MethodPost, apitest.PurchaseURL(urls[(n+1)%2], code), "", nil)
				if err != nil || r.Status != http.StatusOK {
					t.Errorf("purchase of a fresh hold: %v %d %s", err, r.Status, r.Raw)
					return
				}
				id, _ := r.Body["purchase_id"].(float64)
				mu.Lock()
				bought[int64(id)] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return bought
}

// buildServerRace is buildServer, with the race detector when this test
// runs with it: then the servers' webhook code is checked for races under
// the herd too (stopServer reads their logs for reports).
func buildServerRace(t *testing.T) string {
	t.Helper()
	info, _ := debug.ReadBuildInfo()
	if info == nil || !slices.Contains(info.Settings, debug.BuildSetting{Key: "-race", Value: "true"}) {
		return buildServer(t)
	}
	bin := filepath.Join(t.TempDir(), "server")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -race: %v\n%s", err, out)
	}
	return bin
}

// serverEnv is a server's environment: a generated sale of units over
// items in a window that outlasts the test, and every event POSTed to hook.
func serverEnv(dbURL, hook string, units, items int, extra ...string) []string {
	return append([]string{
		"DATABASE_URL=" + dbURL,
		"SALE_UNITS=" + strconv.Itoa(units), "SALE_ITEMS=" + strconv.Itoa(items),
		"SALE_DURATION=" + deploy.SafeSaleDuration(time.Now(), 10*time.Minute).String(),
		"WEBHOOK_URL=" + hook, "WEBHOOK_SECRET=" + hookSecret,
		"LOG_LEVEL=warn",
	}, extra...)
}

// startServer starts bin with env until the test ends and waits until it
// is ready; its log is shown if the test fails.
func startServer(ctx context.Context, t *testing.T, bin string, env []string, name string) *process.Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "server-"+name+".log")
	p, err := process.Start(bin, env, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopServer(t, p, name) })
	if err := p.WaitReady(ctx, time.Minute); err != nil {
		t.Fatalf("server %s: %v", name, err)
	}
	return p
}

// stopServer stops p (already gone after a SIGKILL) and fails the test if
// it reported a data race; its log is shown if the test failed.
func stopServer(t *testing.T, p *process.Process, name string) {
	if err := p.Stop(); err != nil {
		t.Errorf("server %s: %v", name, err)
	}
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Errorf("server %s: %v", name, err)
	}
	if bytes.Contains(b, []byte("WARNING: DATA RACE")) {
		t.Errorf("server %s reported a data race", name)
	}
	if t.Failed() {
		t.Logf("server %s (pid %d) log:\n%s", name, p.PID(), b)
	}
}

// startServers starts n servers at once, as a deployment does (they
// create the sale under the database's locks), and returns their URLs.
func startServers(ctx context.Context, t *testing.T, bin string, env []string, n int) []string {
	t.Helper()
	procs := make([]*process.Process, n)
	for i := range procs {
		p, err := process.Start(bin, env, filepath.Join(t.TempDir(), fmt.Sprintf("server-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = p
		t.Cleanup(func() { stopServer(t, p, strconv.Itoa(i)) })
	}
	urls := make([]string, n)
	for i, p := range procs {
		if err := p.WaitReady(ctx, time.Minute); err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		urls[i] = p.URL
	}
	return urls
}

// waitFor polls cond until it holds, failing the test with its last
// report when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; %s", what, ctx.Err(), state)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitAllDelivered waits until the outbox is drained and every published
// event was answered 2xx by the receiver, with River's job completed.
func waitAllDelivered(ctx context.Context, t *testing.T, pool *pgxpool.Pool, recv *receiver) {
	t.Helper()
	waitFor(ctx, t, "every event delivered", func() (bool, string) {
		recv.checkSignatures(t)
		var outbox, unfinished int
		var ids []int64
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM event_outbox),
			(SELECT count(*) FROM river_job WHERE kind = $1 AND state <> 'completed'),
			(SELECT coalesce(array_agg(id), '{}') FROM events)`, webhook.DeliveryKind).Scan(&outbox, &unfinished, &ids)
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for _, id := range ids {
			if recv.answered(id) == 0 {
				missing++
			}
		}
		return outbox == 0 && unfinished == 0 && missing == 0,
			fmt.Sprintf("%d in the outbox, %d events, %d not delivered, %d delivery jobs not completed", outbox, len(ids), missing, unfinished)
	})
}

// eventLog is the published events, read back after checkEventLog.
type eventLog struct {
	purchaseEvents map[int64]int64 // purchase id -> its event's id
	soldOut        int64           // the sale.sold_out event's id, 0 if none
}

// checkEventLog checks the published log against the purchases and what
// the receiver was sent: one event per purchase and none for anything
// else, per-sale sequences 1..n, one sale.started per sale, and every
// event delivered with the body its row says.
func checkEventLog(ctx context.Context, t *testing.T, pool *pgxpool.Pool, recv *receiver) eventLog {
	t.Helper()
	var without, twice, orphans int
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM purchases p WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.purchase_id = p.id)),
		(SELECT count(*) FROM (SELECT purchase_id FROM events WHERE purchase_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) x),
		(SELECT count(*) FROM events e WHERE e.purchase_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.id = e.purchase_id))`).
		Scan(&without, &twice, &orphans)
	if err != nil {
		t.Fatal(err)
	}
	if without != 0 || twice != 0 || orphans != 0 {
		t.Errorf("%d purchases without an event, %d with more than one, %d events of no purchase", without, twice, orphans)
	}

	rows, err := pool.Query(ctx, `SELECT sale_id, count(*), min(sequence), max(sequence),
		count(*) FILTER (WHERE type = 'sale.started'), count(*) FILTER (WHERE type = 'sale.sold_out')
		FROM events GROUP BY sale_id`)
	if err != nil {
		t.Fatal(err)
	}
	type saleEvents struct{ SaleID, N, Min, Max, Started, SoldOut int64 }
	sales, err := pgx.CollectRows(rows, pgx.RowToStructByPos[saleEvents])
	if err != nil {
		t.Fatal(err)
	}
	if len(sales) != 1 {
		t.Errorf("events of %d sales, want the one sale's: %+v", len(sales), sales)
	}
	for _, s := range sales {
		if s.Min != 1 || s.Max != s.N || s.Started != 1 || s.SoldOut > 1 {
			t.Errorf("sale %d: %d events, sequences %d..%d, %d sale.started, %d sale.sold_out; want 1..n, one start",
				s.SaleID, s.N, s.Min, s.Max, s.Started, s.SoldOut)
		}
	}

	rows, err = pool.Query(ctx, `SELECT id, type::text, sale_id, sequence, purchase_id FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type event struct {
		ID         int64
		Type       string
		SaleID     int64
		Sequence   int64
		PurchaseID *int64
	}
	events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[event])
	if err != nil {
		t.Fatal(err)
	}
	log := eventLog{purchaseEvents: map[int64]int64{}}
	for _, e := range events {
		got := recv.deliveries(e.ID)
		if len(got) == 0 {
			t.Errorf("event %d (%s) never reached the receiver", e.ID, e.Type)
			continue
		}
		var pid int64
		if e.PurchaseID != nil {
			pid = *e.PurchaseID
			log.purchaseEvents[pid] = e.ID
		}
		if e.Type == "sale.sold_out" {
			log.soldOut = e.ID
		}
		for _, d := range got {
			if d.Type != e.Type || d.SaleID != e.SaleID || d.Sequence != e.Sequence || d.purchaseID() != pid {
				t.Errorf("event %+v delivered as %+v", e, d)
			}
		}
	}
	if n := recv.events(); n != len(events) {
		t.Errorf("the receiver was sent %d events, %d are published", n, len(events))
	}
	recv.checkSignatures(t)
	return log
}

type jobState struct {
	State       string
	Attempt     int
	AttemptedBy []string
	// Delivered: the job's output lists the event as delivered.
	Delivered bool
}

// deliveryJob is River's record of the one delivery (a job of up to 100
// events) that carries event id.
func deliveryJob(ctx context.Context, t *testing.T, pool *pgxpool.Pool, id int64) jobState {
	t.Helper()
	var j jobState
	var jobs int
	err := pool.QueryRow(ctx, `SELECT state::text, attempt, coalesce(attempted_by, '{}'),
		coalesce(metadata->'output'->'delivered', '[]') @> to_jsonb($2::bigint), count(*) OVER ()
		FROM river_job
		WHERE kind = $1 AND EXISTS (SELECT FROM jsonb_array_elements(args->'event_ids') x(id) WHERE x.id::bigint = $2)`,
		webhook.DeliveryKind, id).Scan(&j.State, &j.Attempt, &j.AttemptedBy, &j.Delivered, &jobs)
	if err != nil {
		t.Fatalf("delivery job of event %d: %v", id, err)
	}
	if jobs != 1 {
		t.Fatalf("event %d is in %d delivery jobs, want one", id, jobs)
	}
	return j
}

// receiver is a shop's webhook endpoint. It checks each delivery's
// signature with its own HMAC code, not webhook.Verify, so that a mistake
// Sign and Verify share cannot pass, and keeps every delivery.
type receiver struct {
	URL  string
	held chan delivery // the first delivery, when holding

	hold    atomic.Bool   // hold the next delivery open, once
	release chan struct{} // ends a held request at cleanup
	mu      sync.Mutex
	got     map[int64][]delivery
	bad     []string
}

// delivery is one request as the receiver read it.
type delivery struct {
	ID       int64  `json:"id"`
	Type     string `json:"type"`
	SaleID   int64  `json:"sale_id"`
	Sequence int64  `json:"sequence"`
	Data     struct {
		Purchase *struct {
			ID int64 `json:"id"`
		} `json:"purchase"`
	} `json:"data"`
	Attempt int `json:"-"` // Flashsale-Delivery-Attempt
	Status  int `json:"-"` // what the receiver answered; 0: the request was held until it died
}

func (d delivery) purchaseID() int64 {
	if d.Data.Purchase == nil {
		return 0
	}
	return d.Data.Purchase.ID
}

// newReceiver serves until the test ends. holdFirst: the first delivery
// is held open, unanswered, until its connection closes, and sent on held.
func newReceiver(t *testing.T, holdFirst bool) *receiver {
	r := &receiver{held: make(chan delivery, 1), release: make(chan struct{}), got: map[int64][]delivery{}}
	r.hold.Store(holdFirst)
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(r.release) }) // before srv.Close, which waits for handlers
	r.URL = srv.URL + "/hooks"
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	var d delivery
	err = verifySignature(req.Header.Get("Flashsale-Signature"), body, hookSecret, time.Now())
	if err == nil {
		err = json.Unmarshal(body, &d)
	}
	if err == nil && (req.Method != http.MethodPost || req.URL.Path != "/hooks" ||
		req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get("Flashsale-Event-Id") != strconv.FormatInt(d.ID, 10) || req.Header.Get("Flashsale-Event-Type") != d.Type) {
		err = fmt.Errorf("%s %s with headers %v", req.Method, req.URL.Path, req.Header)
	}
	if err == nil {
		d.Attempt, err = strconv.Atoi(req.Header.Get("Flashsale-Delivery-Attempt"))
	}
	if err != nil {
		r.mu.Lock()
		r.bad = append(r.bad, fmt.Sprintf("%v: %.200s", err, body))
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.hold.CompareAndSwap(true, false) {
		r.record(d)
		r.held <- d
		select {
		case <-req.Context().Done():
		case <-r.release:
		}
		return
	}
	d.Status = http.StatusNoContent
	r.record(d)
	w.WriteHeader(d.Status)
}

func (r *receiver) record(d delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[d.ID] = append(r.got[d.ID], d)
}

// deliveries are event id's deliveries, in the order they came.
func (r *receiver) deliveries(id int64) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[id])
}

// events is how many events were sent.
func (r *receiver) events() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// answered is how many deliveries of event id were answered 204.
func (r *receiver) answered(id int64) int {
	n := 0
	for _, d := range r.deliveries(id) {
		if d.Status == http.StatusNoContent {
			n++
		}
	}
	return n
}

// checkSignatures stops the test once a delivery was refused: its retries
// would be refused as well.
func (r *receiver) checkSignatures(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	bad := slices.Clone(r.bad)
	r.mu.Unlock()
	for _, b := range bad {
		t.Errorf("refused a delivery: %s", b)
	}
	if len(bad) > 0 {
		t.FailNow()
	}
}

// verifySignature checks "t=<unix>,v1=<hex>,..." as docs/webhooks.md
// tells a receiver to: some v1 is HMAC-SHA256(secret, "<t>.<body>"), and
// t is recent.
func verifySignature(header string, body []byte, secret string, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		switch k, v, _ := strings.Cut(part, "="); k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("signature %q: no time", header)
	}
	if age := now.Sub(time.Unix(sec, 0)); age < -time.Minute || age > time.Minute {
		return fmt.Errorf("signature %q: signed %s ago", header, age)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("signature " + header + ": no v1 matches")
}
