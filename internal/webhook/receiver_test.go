package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
	"github.com/flashsale/flashsale/internal/webhook"
)

// Secrets the servers sign with: two, as during a rotation, so every
// delivery must verify with each alone.
var secrets = []string{"whsec-old-0123456789abcdef", "whsec-new-fedcba9876543210"}

// eventBody is a delivery's body as a shop parses it (docs/webhooks.md).
type eventBody struct {
	ID        int64     `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	SaleID    int64     `json:"sale_id"`
	Sequence  int64     `json:"sequence"`
	Data      struct {
		Sale struct {
			ID         int64     `json:"id"`
			StartsAt   time.Time `json:"starts_at"`
			EndsAt     time.Time `json:"ends_at"`
			UnitsTotal int32     `json:"units_total"`
		} `json:"sale"`
		Purchase *struct {
			ID     int64  `json:"id"`
			SaleID int64  `json:"sale_id"`
			UserID string `json:"user_id"`
			Code   string `json:"code"`
			Item   struct {
				ID int32 `json:"id"`
			} `json:"item"`
			Price       string    `json:"price"`
			Currency    string    `json:"currency"`
			PurchasedAt time.Time `json:"purchased_at"`
		} `json:"purchase"`
	} `json:"data"`
}

// request is one POST a receiver got.
type request struct {
	event     eventBody
	attempt   int    // Flashsale-Delivery-Attempt
	userAgent string // tells the servers apart
	nth       int    // this event's nth request at this receiver, from 1
	status    int    // what the receiver answered (0 while it has not)
	// gone: the sender had hung up before the answer was written.
	gone              bool
	arrived, answered time.Time
}

// receiver is a shop's endpoint: it checks each delivery the way a shop
// would, with its own signature check, records it, and answers as told.
type receiver struct {
	srv *httptest.Server
	// answer decides the status of an event's nth request; it may block
	// (a slow or hung shop) and should then watch r.Context().
	answer func(r *http.Request, nth int) int

	mu       sync.Mutex
	requests []request
	perEvent map[int64]int
	inFlight map[int64]int
	busy     int // requests in flight, any event
	overlaps []int64
	problems []string
}

func always(status int) func(*http.Request, int) int {
	return func(*http.Request, int) int { return status }
}

// newReceiver serves on a new loopback port until the test ends (after
// the servers, which were started later, have stopped).
func newReceiver(t testing.TB, answer func(r *http.Request, nth int) int) *receiver {
	rc := newUnstartedReceiver(t, answer)
	rc.srv.Start()
	return rc
}

func newUnstartedReceiver(t testing.TB, answer func(r *http.Request, nth int) int) *receiver {
	rc := &receiver{answer: answer, perEvent: map[int64]int{}, inFlight: map[int64]int{}}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	t.Cleanup(func() {
		rc.srv.Close()
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, p := range rc.problems {
			t.Errorf("receiver %s: %s", rc.srv.URL, p)
		}
	})
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, err := io.ReadAll(r.Body)
	var ev eventBody
	var problems []string
	if err != nil {
		problems = append(problems, fmt.Sprintf("read body: %v", err))
	} else if err := json.Unmarshal(body, &ev); err != nil || ev.ID == 0 {
		problems = append(problems, fmt.Sprintf("body %q is not an event: %v", body, err))
	}
	for _, secret := range secrets {
		// Each secret alone verifies: a shop on either side of a rotation
		// accepts the delivery.
		if err := verifySignature(r.Header.Get("Flashsale-Signature"), body, secret, arrived); err != nil {
			problems = append(problems, fmt.Sprintf("event %d: %v", ev.ID, err))
		}
	}
	if n := strings.Count(r.Header.Get("Flashsale-Signature"), "v1="); n != len(secrets) {
		problems = append(problems, fmt.Sprintf("event %d: %d signatures, want one per secret (%d)", ev.ID, n, len(secrets)))
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		problems = append(problems, fmt.Sprintf("event %d: %s with Content-Type %q, want a JSON POST", ev.ID, r.Method, r.Header.Get("Content-Type")))
	}
	if h := r.Header.Get("Flashsale-Event-Id"); h != strconv.FormatInt(ev.ID, 10) {
		problems = append(problems, fmt.Sprintf("event %d: Flashsale-Event-Id %q", ev.ID, h))
	}
	if h := r.Header.Get("Flashsale-Event-Type"); h != ev.Type {
		problems = append(problems, fmt.Sprintf("event %d: Flashsale-Event-Type %q, body says %q", ev.ID, h, ev.Type))
	}
	attempt, err := strconv.Atoi(r.Header.Get("Flashsale-Delivery-Attempt"))
	if err != nil || attempt < 1 {
		problems = append(problems, fmt.Sprintf("event %d: Flashsale-Delivery-Attempt %q", ev.ID, r.Header.Get("Flashsale-Delivery-Attempt")))
	}

	rc.mu.Lock()
	rc.problems = append(rc.problems, problems...)
	rc.perEvent[ev.ID]++
	nth := rc.perEvent[ev.ID]
	rc.inFlight[ev.ID]++
	if rc.inFlight[ev.ID] > 1 {
		rc.overlaps = append(rc.overlaps, ev.ID)
	}
	rc.busy++
	i := len(rc.requests)
	rc.requests = append(rc.requests, request{event: ev, attempt: attempt, userAgent: r.UserAgent(), nth: nth, arrived: arrived})
	rc.mu.Unlock()

	status := http.StatusBadRequest // a delivery that does not check out is refused
	if len(problems) == 0 {
		status = rc.answer(r, nth)
	}
	gone := r.Context().Err() != nil
	w.WriteHeader(status)

	rc.mu.Lock()
	rc.inFlight[ev.ID]--
	rc.busy--
	rc.requests[i].status, rc.requests[i].gone, rc.requests[i].answered = status, gone, time.Now()
	rc.mu.Unlock()
}

// verifySignature checks a Flashsale-Signature header as a shop would,
// written from docs/webhooks.md rather than with webhook.Verify:
// "t=<unix>,v1=<hex>[,v1=...]", each v1 the HMAC-SHA256 of "<t>.<body>".
func verifySignature(header string, body []byte, secret string, now time.Time) error {
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(part, "=")
		switch {
		case !ok:
			return fmt.Errorf("signature header %q: %q is not key=value", header, part)
		case k == "t" && ts == "":
			ts = v
		case k == "t":
			return fmt.Errorf("signature header %q: two timestamps", header)
		case k == "v1":
			sigs = append(sigs, v)
		default:
			return fmt.Errorf("signature header %q: unknown key %q", header, k)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("signature header %q: timestamp: %v", header, err)
	}
	// Signed just before it was sent: whole seconds, so up to one behind.
	if age := now.Sub(time.Unix(sec, 0)); age < -time.Second || age > time.Minute {
		return fmt.Errorf("signature header %q: signed %v before it arrived", header, age)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("signature header %q: no v1 is the HMAC of the body with %q", header, secret[:9]+"...")
}

// snapshot copies what the receiver has seen so far.
func (rc *receiver) snapshot() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.requests)
}

// byEvent groups the requests by event id, in arrival order.
func byEvent(reqs []request) map[int64][]request {
	out := map[int64][]request{}
	for _, r := range reqs {
		out[r.event.ID] = append(out[r.event.ID], r)
	}
	return out
}

func (r request) String() string {
	gone := ""
	if r.gone {
		gone = " (sender gone)"
	}
	return fmt.Sprintf("event %d attempt %d: %d%s after %v", r.event.ID, r.attempt, r.status, gone, r.answered.Sub(r.arrived).Round(time.Millisecond))
}

// accepted: the receiver answered 2xx while the sender still listened.
func (r request) accepted() bool { return r.status/100 == 2 && !r.gone }

// eventRow is an event as the database has it, with its purchase.
type eventRow struct {
	ID          int64
	Type        string
	SaleID      int64
	Sequence    int64
	PurchaseID  *int64
	OccurredAt  time.Time
	UserID      *string
	Code        *string
	ItemID      *int32
	PurchasedAt *time.Time
}

func dbEvents(t testing.TB, pool *pgxpool.Pool) []eventRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT e.id, e.type::text, e.sale_id, e.sequence, e.purchase_id, e.occurred_at,
		       p.user_id, p.code, p.item_id, p.purchased_at
		FROM events e LEFT JOIN purchases p ON p.id = e.purchase_id
		ORDER BY e.id`)
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	evs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[eventRow])
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	return evs
}

// checkBody: what the shop was sent is the event the database holds.
func checkBody(t testing.TB, want eventRow, got eventBody) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.SaleID != want.SaleID || got.Sequence != want.Sequence ||
		!got.CreatedAt.Equal(want.OccurredAt) || got.Data.Sale.ID != want.SaleID {
		t.Errorf("event %d sent as %+v, database has %+v", want.ID, got, want)
		return
	}
	p := got.Data.Purchase
	switch {
	case want.PurchaseID == nil && p != nil:
		t.Errorf("event %d (%s) sent with a purchase %+v", want.ID, want.Type, *p)
	case want.PurchaseID != nil && p == nil:
		t.Errorf("event %d (%s) sent without its purchase %d", want.ID, want.Type, *want.PurchaseID)
	case p != nil && (p.ID != *want.PurchaseID || p.SaleID != want.SaleID || p.UserID != *want.UserID ||
		p.Code != *want.Code || p.Item.ID != *want.ItemID || !p.PurchasedAt.Equal(*want.PurchasedAt) ||
		p.Price == "" || p.Currency == ""):
		t.Errorf("event %d sent purchase %+v, database has purchase %d by %s (code %s, item %d, at %v)",
			want.ID, *p, *want.PurchaseID, *want.UserID, *want.Code, *want.ItemID, *want.PurchasedAt)
	}
}

// checkReceived: every event in the database reached rc, each request of
// it carried it as the database has it, and rc got nothing else.
func checkReceived(t testing.TB, evs []eventRow, rc *receiver) map[int64][]request {
	t.Helper()
	got := byEvent(rc.snapshot())
	for _, ev := range evs {
		reqs := got[ev.ID]
		if !slices.ContainsFunc(reqs, request.accepted) {
			t.Errorf("event %d (%s, sale %d #%d) never accepted by %s (%d requests)", ev.ID, ev.Type, ev.SaleID, ev.Sequence, rc.URL(), len(reqs))
		}
		for _, r := range reqs {
			checkBody(t, ev, r.event)
		}
	}
	if len(got) != len(evs) {
		t.Errorf("%s got %d distinct events, the database has %d", rc.URL(), len(got), len(evs))
	}
	return got
}

// jobStates counts the delivery jobs by River state.
func jobStates(t testing.TB, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT state::text, count(*)::int FROM river_job WHERE kind = $1 GROUP BY state`, webhook.DeliveryKind)
	if err != nil {
		t.Fatalf("count jobs: %v", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatalf("count jobs: %v", err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("count jobs: %v", err)
	}
	return out
}

// job is River's record of one delivery: up to 100 events to one
// endpoint.
type job struct {
	ID          int64
	EventIDs    []int64 // args.event_ids, in order
	URL         string
	State       string
	Attempt     int
	MaxAttempts int
	Errors      []string
	// Delivered is the job's output: the events it has delivered, in
	// the order it sent them, kept across its attempts.
	Delivered []int64
	// Snoozes: the times it ran out of its sending budget and went on.
	Snoozes int
}

func (j job) String() string {
	return fmt.Sprintf("delivery %d of events %v to %s: %s after %d of %d attempts, delivered %v, errors %q",
		j.ID, j.EventIDs, j.URL, j.State, j.Attempt, j.MaxAttempts, j.Delivered, j.Errors)
}

// undelivered is the job's events it has not delivered.
func (j job) undelivered() []int64 {
	return slices.DeleteFunc(slices.Clone(j.EventIDs), func(id int64) bool { return slices.Contains(j.Delivered, id) })
}

func deliveryJobs(t testing.TB, pool *pgxpool.Pool) []job {
	t.Helper()
	// A job whose first POST failed records "delivered": null.
	rows, err := pool.Query(context.Background(), `
		SELECT id,
		       ARRAY(SELECT x.id::bigint FROM jsonb_array_elements(args->'event_ids') WITH ORDINALITY x(id, n) ORDER BY x.n),
		       args->>'url', state::text, attempt, max_attempts,
		       ARRAY(SELECT x->>'error' FROM unnest(errors) x),
		       ARRAY(SELECT x.id::bigint FROM jsonb_array_elements(CASE jsonb_typeof(metadata->'output'->'delivered')
		             WHEN 'array' THEN metadata->'output'->'delivered' ELSE '[]' END) WITH ORDINALITY x(id, n) ORDER BY x.n),
		       coalesce((metadata->>'snoozes')::int, 0)
		FROM river_job WHERE kind = $1 ORDER BY id`, webhook.DeliveryKind)
	if err != nil {
		t.Fatalf("read jobs: %v", err)
	}
	jobs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[job])
	if err != nil {
		t.Fatalf("read jobs: %v", err)
	}
	return jobs
}

// byURLAndEvent indexes jobs by endpoint and event: the jobs that carry
// each event to each endpoint.
func byURLAndEvent(jobs []job) map[string]map[int64][]job {
	out := map[string]map[int64][]job{}
	for _, j := range jobs {
		if out[j.URL] == nil {
			out[j.URL] = map[int64][]job{}
		}
		for _, id := range j.EventIDs {
			out[j.URL][id] = append(out[j.URL][id], j)
		}
	}
	return out
}

// allDelivered: nothing waits in the outbox, at least wantEvents events
// are published, each is in a delivery to each of urls, and every delivery
// is completed, having delivered each of its events. It is a condition to
// poll.
func allDelivered(t testing.TB, pool *pgxpool.Pool, wantEvents int, urls ...string) error {
	t.Helper()
	var outbox, events int
	if err := pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM event_outbox), (SELECT count(*) FROM events)`).Scan(&outbox, &events); err != nil {
		return err
	}
	if outbox > 0 || events < wantEvents {
		return fmt.Errorf("%d events published, %d in the outbox; want %d published", events, outbox, wantEvents)
	}
	jobs := deliveryJobs(t, pool)
	for _, j := range jobs {
		if j.State != "completed" {
			return fmt.Errorf("%v", j)
		}
		if !slices.Equal(j.Delivered, j.EventIDs) {
			t.Fatalf("%v: completed without delivering each of its events, in order", j)
		}
	}
	index := byURLAndEvent(jobs)
	for _, ev := range dbEvents(t, pool) {
		for _, u := range urls {
			if len(index[u][ev.ID]) == 0 {
				return fmt.Errorf("event %d has no delivery to %s yet", ev.ID, u)
			}
		}
	}
	return nil
}

// checkOneJobEach: each event went to each of urls in one delivery, made
// at its first attempt, and a delivery's events are at most 100, in the
// order they were published. It is for a healthy receiver, once all is
// delivered.
func checkOneJobEach(t testing.TB, jobs []job, evs []eventRow, urls ...string) {
	t.Helper()
	for _, j := range jobs {
		if len(j.EventIDs) == 0 || len(j.EventIDs) > 100 || !slices.IsSorted(j.EventIDs) {
			t.Errorf("%v: want 1 to 100 events in id order", j)
		}
		if j.State != "completed" || j.Attempt != 1 || len(j.Errors) != 0 || j.Snoozes != 0 {
			t.Errorf("%v: want completed at its first attempt", j)
		}
	}
	index := byURLAndEvent(jobs)
	for _, u := range urls {
		for _, ev := range evs {
			if n := len(index[u][ev.ID]); n != 1 {
				t.Errorf("event %d is in %d deliveries to %s, want one", ev.ID, n, u)
			}
		}
	}
	if len(index) != len(urls) {
		t.Errorf("deliveries to %d endpoints, want %d", len(index), len(urls))
	}
}

// idle: the receiver answers no request, so what it recorded is final.
func (rc *receiver) idle() error {
	if n := rc.busyNow(); n > 0 {
		return fmt.Errorf("the receiver still answers %d requests", n)
	}
	return nil
}

// waitFor polls cond until it holds, failing the test with its last
// complaint after limit.
func waitFor(t testing.TB, limit time.Duration, cond func() error) {
	t.Helper()
	testutil.Poll(t, limit, cond)
}

// buy makes n purchases through the API of servers (in turn), by users of
// prefix each buying up to perUser, workers at a time, and returns how
// long each purchase's slower request (checkout or purchase) took.
func buy(t testing.TB, servers []*apitest.Server, prefix string, n, perUser, items, workers int) []time.Duration {
	t.Helper()
	took := make([]time.Duration, n)
	testutil.Together(workers, n, func(i int) {
		base := servers[i%len(servers)].URL
		user := fmt.Sprintf("%s-%02d", prefix, i/perUser)
		r, err := apitest.Send(apitest.Client, http.MethodPost, apitest.CheckoutURL(base, user, i%items+1), "", nil)
		if err != nil {
			t.Error(err)
			return
		}
		if !apitest.Check(t, "checkout by "+user, r, http.StatusCreated, "") {
			return
		}
		code, _ := r.Body["code"].(string)
		p, err := apitest.Send(apitest.Client, http.MethodPost, apitest.PurchaseURL(base, code), "", nil)
		if err != nil {
			t.Error(err)
			return
		}
		apitest.Check(t, "purchase by "+user, p, http.StatusOK, "")
		took[i] = max(r.Took, p.Took)
	})
	if t.Failed() {
		t.FailNow()
	}
	return took
}

// errorsMention: every error River kept mentions what.
func errorsMention(errs []string, what string) bool {
	return len(errs) > 0 && !slices.ContainsFunc(errs, func(e string) bool { return !strings.Contains(e, what) })
}

// listenOn listens on addr again once the test let it go.
func listenOn(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(context.Background(), "tcp", addr)
}

// observer records what the deliveries tell webhook.Observer (the
// metrics).
type observer struct {
	mu        sync.Mutex
	delivered int
	failed    []failedAttempt
}

type failedAttempt struct {
	final       bool
	undelivered int
}

func (o *observer) Delivered() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.delivered++
}

func (o *observer) AttemptFailed(final bool, undelivered int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed = append(o.failed, failedAttempt{final, undelivered})
}

func (o *observer) snapshot() (delivered int, failed []failedAttempt) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.delivered, slices.Clone(o.failed)
}
