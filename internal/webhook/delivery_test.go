package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/webhook"
)

// publishEvery keeps the tests' waits short: events are published ten
// times a second instead of once.
const publishEvery = 100 * time.Millisecond

// config is the webhooks of a test server delivering to urls.
func config(urls ...string) *webhook.Config {
	return &webhook.Config{URLs: urls, Secrets: secrets, Timeout: 2 * time.Second, RetryFor: time.Hour, PublishEvery: publishEvery}
}

// start runs a server delivering with cfg. Its sale lasts a week: in an
// hourly one, a test crossing the hour would see another sale's end and
// start published midway through its counts.
func start(t *testing.T, cfg *webhook.Config) *apitest.Server {
	t.Helper()
	opts := apitest.WeekLong(apitest.DefaultSettings)
	opts.Webhooks = cfg
	return apitest.Start(t, opts)
}

// checkSequences: each sale's events are numbered 1..n without a gap, and
// their ids grow with their numbers.
func checkSequences(t *testing.T, evs []eventRow) map[int64][]eventRow {
	t.Helper()
	bySale := map[int64][]eventRow{}
	for _, ev := range evs { // in id order
		bySale[ev.SaleID] = append(bySale[ev.SaleID], ev)
	}
	for id, list := range bySale {
		for i, ev := range list {
			if ev.Sequence != int64(i+1) {
				t.Errorf("sale %d: event %d (%s) is #%d, want #%d: sequences by id are not 1..n", id, ev.ID, ev.Type, ev.Sequence, i+1)
			}
		}
	}
	return bySale
}

func TestEveryPurchaseIsDeliveredSigned(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, always(http.StatusNoContent))
	cfg, obs := config(rc.URL()), &observer{}
	cfg.Observer = obs
	srv := start(t, cfg)
	const purchases = 40
	buy(t, []*apitest.Server{srv}, "signed", purchases, 5, apitest.DefaultSettings.Items, 8)

	waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, purchases+1, rc.URL()) })

	if n := pgtest.Scalar(t, srv.Pool, `SELECT count(*) FROM purchases`); n != purchases {
		t.Fatalf("%d purchases, want %d", n, purchases)
	}
	if n := pgtest.Scalar(t, srv.Pool, `SELECT count(*) FROM purchases p
		WHERE (SELECT count(*) FROM events e WHERE e.purchase_id = p.id AND e.type = 'purchase.completed') <> 1`); n != 0 {
		t.Errorf("%d purchases without exactly one purchase.completed event", n)
	}
	evs := dbEvents(t, srv.Pool)
	got := checkReceived(t, evs, rc)
	bySale := checkSequences(t, evs)
	saleID := apitest.CurrentSaleID(t, srv.URL)
	if list := bySale[saleID]; len(list) < purchases+1 || list[0].Type != "sale.started" {
		t.Errorf("sale %d's events begin with %v, want sale.started and %d purchases", saleID, list[:min(1, len(list))], purchases)
	}
	// A 2xx receiver hears of each event once: a delivery sends each of
	// its events once.
	for id, reqs := range got {
		if len(reqs) != 1 || reqs[0].attempt != 1 {
			t.Errorf("event %d reached the receiver %d times, want once, at attempt 1", id, len(reqs))
		}
	}
	jobs := deliveryJobs(t, srv.Pool)
	checkOneJobEach(t, jobs, evs, rc.URL())
	t.Logf("%d events in %d deliveries", len(evs), len(jobs))
	if delivered, failed := obs.snapshot(); delivered != len(evs) || len(failed) != 0 {
		t.Errorf("observer told of %d events delivered and %d failed attempts, want %d and none", delivered, len(failed), len(evs))
	}
}

// TestFailingReceiverIsRetriedUntilDelivered: whatever way an endpoint
// fails, its deliveries are retried until it answers, each retry sending
// only what the earlier attempts did not deliver, and each event is then
// accepted.
func TestFailingReceiverIsRetriedUntilDelivered(t *testing.T) {
	t.Parallel()
	const purchases = 3 // and the sale's start: four events
	startFor := func(t *testing.T, rc *receiver, timeout time.Duration, obs webhook.Observer) *apitest.Server {
		cfg := config(rc.URL())
		// Retries a few hundred milliseconds apart (RetryFor/20 doubling),
		// seven attempts: enough for a delivery of the four events each
		// failing once.
		cfg.RetryFor, cfg.Timeout, cfg.Observer = 5*time.Second, timeout, obs
		srv := start(t, cfg)
		buy(t, []*apitest.Server{srv}, "retry", purchases, 5, 30, 1)
		return srv
	}
	// settled: all delivered, and the receiver has answered every request
	// (a late one may still be at work after its retry succeeded).
	settled := func(t *testing.T, srv *apitest.Server, rc *receiver, urls ...string) func() error {
		return func() error {
			if err := allDelivered(t, srv.Pool, purchases+1, urls...); err != nil {
				return err
			}
			return rc.idle()
		}
	}

	t.Run("server errors then success", func(t *testing.T) {
		t.Parallel()
		const failures = 5
		var n atomic.Int32
		rc := newReceiver(t, func(*http.Request, int) int {
			if n.Add(1) <= failures {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		})
		obs := &observer{}
		srv := startFor(t, rc, 2*time.Second, obs)
		waitFor(t, 30*time.Second, settled(t, srv, rc, rc.URL()))
		evs := dbEvents(t, srv.Pool)
		checkReceived(t, evs, rc)
		if reqs := rc.snapshot(); len(reqs) != len(evs)+failures {
			t.Errorf("receiver got %d requests, want one per event (%d) and the %d it failed", len(reqs), len(evs), failures)
		}
		checkRetries(t, deliveryJobs(t, srv.Pool), rc.snapshot(), "500 Internal Server Error")
		delivered, failed := obs.snapshot()
		if delivered != len(evs) || len(failed) != failures || slices.ContainsFunc(failed, func(f failedAttempt) bool { return f.final }) {
			t.Errorf("observer told of %d events delivered and failed attempts %+v; want %d and %d, none final",
				delivered, failed, len(evs), failures)
		}
	})

	t.Run("connection refused until the endpoint is up", func(t *testing.T) {
		t.Parallel()
		rc := newUnstartedReceiver(t, always(http.StatusOK))
		// The endpoint's port is known, and refuses, until it is started.
		addr := rc.srv.Listener.Addr().String()
		rc.srv.Listener.Close()
		url := "http://" + addr
		cfg := config(url)
		cfg.RetryFor = 10 * time.Second
		srv := start(t, cfg)
		buy(t, []*apitest.Server{srv}, "refused", purchases, 5, 30, 1)
		// Every event is queued, every delivery has failed at least twice,
		// has delivered nothing, and is still retried.
		waitFor(t, 20*time.Second, func() error {
			evs := dbEvents(t, srv.Pool)
			if len(evs) < purchases+1 {
				return fmt.Errorf("%d events published", len(evs))
			}
			jobs := deliveryJobs(t, srv.Pool)
			index := byURLAndEvent(jobs)
			for _, ev := range evs {
				if len(index[url][ev.ID]) != 1 {
					return fmt.Errorf("event %d is in %d deliveries", ev.ID, len(index[url][ev.ID]))
				}
			}
			for _, j := range jobs {
				if j.State == "discarded" || j.State == "completed" || len(j.Delivered) != 0 {
					t.Fatalf("%v while the endpoint refused", j)
				}
				if len(j.Errors) < 2 || !errorsMention(j.Errors, "connection refused") {
					return fmt.Errorf("%v", j)
				}
			}
			return nil
		})
		l, err := listenOn(addr)
		if err != nil {
			t.Fatalf("the endpoint's port %s was taken meanwhile: %v", addr, err)
		}
		rc.srv.Listener = l
		rc.srv.Start()
		waitFor(t, 20*time.Second, settled(t, srv, rc, url))
		got := checkReceived(t, dbEvents(t, srv.Pool), rc)
		for id, reqs := range got {
			if len(reqs) != 1 || reqs[0].attempt < 3 {
				t.Errorf("event %d: %d requests, attempt %d; want one, after two refused", id, len(reqs), reqs[0].attempt)
			}
		}
		// The attempt that found the endpoint up sent each of its events.
		for _, j := range deliveryJobs(t, srv.Pool) {
			if len(j.Errors) != j.Attempt-1 || !errorsMention(j.Errors, "connection refused") {
				t.Errorf("%v: want an error per refused attempt, then the last clean", j)
			}
			for _, id := range j.EventIDs {
				if reqs := got[id]; len(reqs) != 1 || reqs[0].attempt != j.Attempt {
					t.Errorf("event %d of %v sent at attempts %v, want its last only", id, j, attempts(reqs))
				}
			}
		}
	})

	t.Run("no answer within the timeout, then fast", func(t *testing.T) {
		t.Parallel()
		const timeout = 300 * time.Millisecond
		rc := newReceiver(t, func(r *http.Request, nth int) int {
			if nth == 1 {
				<-r.Context().Done() // hung until the sender gives up
			}
			return http.StatusNoContent
		})
		srv := startFor(t, rc, timeout, nil)
		waitFor(t, 20*time.Second, settled(t, srv, rc, rc.URL()))
		got := checkReceived(t, dbEvents(t, srv.Pool), rc)
		for id, reqs := range got {
			if len(reqs) != 2 || !reqs[0].gone || reqs[1].gone {
				t.Errorf("event %d: requests %v, want a first given up and a second accepted", id, reqs)
				continue
			}
			// The sender gave up at its timeout, not at River's job timeout
			// (25s more). Its clock starts before the receiver's, so the
			// receiver sees it wait somewhat less.
			if waited := reqs[0].answered.Sub(reqs[0].arrived); waited < timeout/2 || waited > timeout+2*time.Second {
				t.Errorf("event %d: the sender waited %v for an answer, want about the timeout %v", id, waited, timeout)
			}
		}
		checkRetries(t, deliveryJobs(t, srv.Pool), rc.snapshot(), "deadline exceeded")
	})

	t.Run("success after the timeout is a failure, delivered again", func(t *testing.T) {
		t.Parallel()
		const timeout = 300 * time.Millisecond
		rc := newReceiver(t, func(r *http.Request, nth int) int {
			if nth == 1 {
				// A shop that processes the event, then answers too late.
				time.Sleep(3 * timeout)
			}
			return http.StatusOK
		})
		srv := startFor(t, rc, timeout, nil)
		waitFor(t, 20*time.Second, settled(t, srv, rc, rc.URL()))
		got := checkReceived(t, dbEvents(t, srv.Pool), rc)
		for id, reqs := range got {
			// At least once: the shop saw the event twice and dedupes by id.
			if len(reqs) != 2 || reqs[0].status != http.StatusOK || !reqs[0].gone || !reqs[1].accepted() {
				t.Errorf("event %d: requests %v, want a late 200 and then an accepted one", id, reqs)
			}
		}
		checkRetries(t, deliveryJobs(t, srv.Pool), rc.snapshot(), "deadline exceeded")
	})

	t.Run("slow within the timeout is delivered once", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, func(*http.Request, int) int {
			time.Sleep(300 * time.Millisecond) // a slow shop, well within the timeout
			return http.StatusAccepted
		})
		srv := startFor(t, rc, 2*time.Second, nil)
		waitFor(t, 20*time.Second, settled(t, srv, rc, rc.URL()))
		evs := dbEvents(t, srv.Pool)
		for id, reqs := range checkReceived(t, evs, rc) {
			if len(reqs) != 1 || !reqs[0].accepted() {
				t.Errorf("event %d: requests %v, want one accepted", id, reqs)
			}
		}
		checkOneJobEach(t, deliveryJobs(t, srv.Pool), evs, rc.URL())
	})
}

// checkRetries: each delivery completed after its retries, with an error
// River kept mentioning what for each failed attempt; every attempt sent,
// in order, the events the earlier ones had not delivered, each accepted
// until one failed, which ended the attempt, and the last sent the rest;
// each request said its attempt. reqs are every request to the one
// endpoint, each event in one delivery.
func checkRetries(t *testing.T, jobs []job, reqs []request, what string) {
	t.Helper()
	for _, j := range jobs {
		if j.State != "completed" || !slices.Equal(j.Delivered, j.EventIDs) || len(j.Errors) != j.Attempt-1 {
			t.Errorf("%v: want completed, all delivered, an error for each attempt but the last", j)
			continue
		}
		if j.Attempt > 1 && !errorsMention(j.Errors, what) {
			t.Errorf("%v: want each error to mention %q", j, what)
		}
		byAttempt := map[int][]request{}
		for _, r := range reqs {
			if slices.Contains(j.EventIDs, r.event.ID) {
				byAttempt[r.attempt] = append(byAttempt[r.attempt], r)
			}
		}
		if len(byAttempt) != j.Attempt {
			t.Errorf("%v: requests at %d attempts: %v", j, len(byAttempt), byAttempt)
			continue
		}
		next := 0 // the first event not delivered yet
		for a := 1; a <= j.Attempt; a++ {
			sent := byAttempt[a]
			for i, r := range sent {
				failed := a < j.Attempt && i == len(sent)-1
				if next == len(j.EventIDs) || r.event.ID != j.EventIDs[next] || r.accepted() == failed {
					t.Errorf("%v: attempt %d sent %v; want the undelivered events from %d on, in order, each accepted but a failed last one",
						j, a, sent, j.EventIDs[min(next, len(j.EventIDs)-1)])
					break
				}
				if !failed {
					next++
				}
			}
		}
		if next != len(j.EventIDs) {
			t.Errorf("%v: its attempts were accepted for %d of its events", j, next)
		}
	}
}

func attempts(reqs []request) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r.attempt
	}
	return out
}

// TestGivenUpIsKeptAsFailed: a delivery the endpoint never accepts is
// attempted until River gives it up, each attempt stopping at its first
// event, and its events are then the failed ones.
func TestGivenUpIsKeptAsFailed(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, always(http.StatusInternalServerError))
	cfg, obs := config(rc.URL()), &observer{}
	cfg.RetryFor, cfg.Observer = time.Second, obs
	srv := start(t, cfg)
	buy(t, []*apitest.Server{srv}, "failed", 1, 1, 30, 1)
	const events = 2 // the sale's start and the purchase

	var jobs []job
	waitFor(t, 30*time.Second, func() error {
		if n := pgtest.Scalar(t, srv.Pool, `SELECT count(*) FROM events`); n != events {
			return fmt.Errorf("%d events published, want %d", n, events)
		}
		jobs = deliveryJobs(t, srv.Pool)
		if n := len(byURLAndEvent(jobs)[rc.URL()]); n != events {
			return fmt.Errorf("%d events queued, want %d", n, events)
		}
		for _, j := range jobs {
			if j.State != "discarded" {
				return fmt.Errorf("%v", j)
			}
		}
		return nil
	})
	ctx := context.Background()
	got := byEvent(rc.snapshot())
	for _, j := range jobs {
		// Every attempt River allowed was made, and each POSTed the first
		// event only, which failed.
		if j.MaxAttempts < 3 || j.Attempt != j.MaxAttempts || len(j.Errors) != j.Attempt || len(j.Delivered) != 0 ||
			!slices.Equal(attempts(got[j.EventIDs[0]]), seq(j.Attempt)) {
			t.Errorf("%v: %d requests of event %d; want every attempt made, each failed at the first event",
				j, len(got[j.EventIDs[0]]), j.EventIDs[0])
		}
		for _, id := range j.EventIDs[1:] {
			if len(got[id]) != 0 {
				t.Errorf("%v: event %d sent %d times after an earlier one failed", j, id, len(got[id]))
			}
		}
		for _, id := range j.EventIDs {
			ds, err := srv.Events.Deliveries(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].JobID != j.ID || ds[0].State != "discarded" || ds[0].Delivered || ds[0].URL != rc.URL() ||
				ds[0].FinalizedAt.IsZero() || ds[0].Attempts != j.MaxAttempts || ds[0].MaxAttempts != j.MaxAttempts {
				t.Errorf("Deliveries(%d) = %+v, want %v, undelivered", id, ds, j)
			}
		}
	}
	// Newest delivery first, each with its events in order.
	var want []string
	for _, j := range slices.Backward(jobs) {
		for _, id := range j.EventIDs {
			want = append(want, fmt.Sprintf("job %d event %d", j.ID, id))
		}
	}
	failed, err := srv.Events.Failed(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := failedList(failed); !slices.Equal(got, want) {
		t.Fatalf("Failed lists %v, want %v", got, want)
	}
	for i, f := range failed {
		if f.URL != rc.URL() || f.Attempts < 3 || !errorsMention([]string{f.LastError}, "500 Internal Server Error") {
			t.Errorf("Failed[%d] = %+v, want given up with its last error", i, f)
		}
	}
	// A page is deliveries, each with all its failed events.
	newest := jobs[len(jobs)-1]
	page, err := srv.Events.Failed(ctx, 0, 1)
	if err != nil || !slices.Equal(failedList(page), want[:len(newest.EventIDs)]) {
		t.Errorf("Failed(0, 1) = %v, %v; want %v", failedList(page), err, want[:len(newest.EventIDs)])
	}
	rest, err := srv.Events.Failed(ctx, newest.ID, 10)
	if err != nil || !slices.Equal(failedList(rest), want[len(newest.EventIDs):]) {
		t.Errorf("Failed(%d, 10) = %v, %v; want %v", newest.ID, failedList(rest), err, want[len(newest.EventIDs):])
	}
	b, err := srv.Events.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.Failed != events || b.Undelivered != 0 || b.Unpublished != 0 {
		t.Errorf("Backlog = %+v, want %d failed and nothing waiting", b, events)
	}
	delivered, fails := obs.snapshot()
	var wantFails []failedAttempt
	for _, j := range jobs {
		for a := 1; a <= j.Attempt; a++ {
			wantFails = append(wantFails, failedAttempt{final: a == j.MaxAttempts, undelivered: len(j.EventIDs)})
		}
	}
	if delivered != 0 || !sameFailures(fails, wantFails) {
		t.Errorf("observer told of %d delivered and failed attempts %+v; want none and %+v", delivered, fails, wantFails)
	}
}

// TestGivenUpKeepsWhatItDelivered: a delivery whose third event the
// endpoint refuses delivers the two before it, retries from the third
// alone, and once given up lists the third and fourth as failed, not
// the two it delivered.
func TestGivenUpKeepsWhatItDelivered(t *testing.T) {
	t.Parallel()
	var refuse atomic.Int64 // an event id the receiver answers 500
	rc := newReceiver(t, func(r *http.Request, _ int) int {
		if r.Header.Get("Flashsale-Event-Id") == strconv.FormatInt(refuse.Load(), 10) {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	cfg, obs := config(rc.URL()), &observer{}
	cfg.RetryFor, cfg.Observer = time.Second, obs
	srv := start(t, cfg)
	buy(t, []*apitest.Server{srv}, "partly", 3, 5, 30, 1)
	waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, 4, rc.URL()) })
	evs := dbEvents(t, srv.Pool)
	before := deliveryJobs(t, srv.Pool)
	ctx := context.Background()

	// One delivery of the four events, in order (a redelivery puts up to
	// 100 in one), whose third is refused from now on.
	ids := make([]int64, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	refuse.Store(ids[2])
	if n, err := srv.Events.Redeliver(ctx, ids); err != nil || n != len(ids) {
		t.Fatalf("Redeliver(%v) = %d, %v; want %d, one per event", ids, n, err, len(ids))
	}
	var j job
	waitFor(t, 30*time.Second, func() error {
		jobs := deliveryJobs(t, srv.Pool)
		if len(jobs) != len(before)+1 {
			return fmt.Errorf("%d deliveries, want the redelivery after the %d first", len(jobs), len(before))
		}
		if j = jobs[len(jobs)-1]; j.State != "discarded" {
			return fmt.Errorf("%v", j)
		}
		return rc.idle()
	})
	if !slices.Equal(j.EventIDs, ids) || !slices.Equal(j.Delivered, ids[:2]) || j.Attempt != j.MaxAttempts ||
		len(j.Errors) != j.Attempt || !errorsMention(j.Errors, fmt.Sprintf("event %d: ", ids[2])) {
		t.Fatalf("%v; want events %v, the first two delivered, every attempt failed at event %d", j, ids, ids[2])
	}
	// Each attempt sent only the events not yet delivered: the first two
	// once (and once before), the third at every attempt, the fourth never
	// again.
	got := byEvent(rc.snapshot())
	for i, id := range ids {
		want := []int{1, 1}
		switch i {
		case 2:
			want = append([]int{1}, seq(j.Attempt)...)
		case 3:
			want = []int{1}
		}
		if a := attempts(got[id]); !slices.Equal(a, want) {
			t.Errorf("event %d sent at attempts %v, want %v", id, a, want)
		}
	}

	failed, err := srv.Events.Failed(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("job %d event %d", j.ID, ids[2]), fmt.Sprintf("job %d event %d", j.ID, ids[3])}
	if got := failedList(failed); !slices.Equal(got, want) {
		t.Errorf("Failed lists %v, want %v", got, want)
	}
	b, err := srv.Events.Backlog(ctx)
	if err != nil || b.Failed != 2 || b.Undelivered != 0 {
		t.Errorf("Backlog = %+v, %v; want the 2 undelivered events failed, nothing waiting", b, err)
	}
	for i, id := range ids {
		ds, err := srv.Events.Deliveries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2 || ds[0].State != "completed" || !ds[0].Delivered || ds[1].JobID != j.ID ||
			ds[1].State != "discarded" || ds[1].Delivered != (i < 2) {
			t.Errorf("Deliveries(%d) = %+v; want the first delivered, then job %d, delivered %v", id, ds, j.ID, i < 2)
		}
	}
	delivered, fails := obs.snapshot()
	var wantFails []failedAttempt
	for a := 1; a <= j.Attempt; a++ {
		wantFails = append(wantFails, failedAttempt{final: a == j.MaxAttempts, undelivered: 2})
	}
	if delivered != len(evs)+2 || !sameFailures(fails, wantFails) {
		t.Errorf("observer told of %d delivered and failed attempts %+v; want %d and %+v", delivered, fails, len(evs)+2, wantFails)
	}
}

// TestLongDeliveryGoesOnWithoutARetry: a delivery still sending after its
// budget of 20 seconds stops and goes on at once with the rest, as the
// same attempt, sending nothing twice.
func TestLongDeliveryGoesOnWithoutARetry(t *testing.T) {
	t.Parallel()
	var slow atomic.Bool
	rc := newReceiver(t, func(*http.Request, int) int {
		if slow.Load() {
			time.Sleep(time.Second) // a shop that takes a second an event
		}
		return http.StatusNoContent
	})
	cfg, obs := config(rc.URL()), &observer{}
	cfg.Observer = obs
	srv := start(t, cfg)
	// 21 events: the first 20 fill the budget.
	buy(t, []*apitest.Server{srv}, "long", 20, 5, 30, 4)
	waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, 21, rc.URL()) })
	evs := dbEvents(t, srv.Pool)
	ids := make([]int64, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	before := len(deliveryJobs(t, srv.Pool))

	slow.Store(true)
	if n, err := srv.Events.Redeliver(context.Background(), ids); err != nil || n != len(ids) {
		t.Fatalf("Redeliver(%d events) = %d, %v", len(ids), n, err)
	}
	waitFor(t, 60*time.Second, func() error { return allDelivered(t, srv.Pool, len(ids), rc.URL()) })
	jobs := deliveryJobs(t, srv.Pool)
	if len(jobs) != before+1 {
		t.Fatalf("%d deliveries, want the redelivery after the %d first", len(jobs), before)
	}
	if j := jobs[before]; !slices.Equal(j.EventIDs, ids) || j.Attempt != 1 || len(j.Errors) != 0 || j.Snoozes < 1 {
		t.Errorf("%v, %d snoozes; want its events delivered at its first attempt, after going on at least once", j, j.Snoozes)
	}
	for id, reqs := range checkReceived(t, evs, rc) {
		if len(reqs) != 2 || !reqs[1].accepted() || reqs[1].attempt != 1 {
			t.Errorf("event %d: requests %v, want the first delivery's and one more, accepted at attempt 1", id, reqs)
		}
	}
	if delivered, failed := obs.snapshot(); delivered != 2*len(evs) || len(failed) != 0 {
		t.Errorf("observer told of %d delivered and failed attempts %+v; want %d and none", delivered, failed, 2*len(evs))
	}
}

// seq is 1..n.
func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func failedList(ds []sale.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("job %d event %d", d.JobID, d.EventID)
	}
	return out
}

// sameFailures: the failed attempts told of are want, in any order (the
// deliveries run at once).
func sameFailures(got, want []failedAttempt) bool {
	key := func(f failedAttempt) string { return fmt.Sprint(f.final, f.undelivered) }
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, f := range got {
		g[i] = key(f)
	}
	for i, f := range want {
		w[i] = key(f)
	}
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}
