package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

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
	srv := start(t, config(rc.URL()))
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
	// A 2xx receiver hears of each event once.
	for id, reqs := range got {
		if len(reqs) != 1 || reqs[0].attempt != 1 {
			t.Errorf("event %d reached the receiver %d times, want once, at attempt 1", id, len(reqs))
		}
	}
	if states := jobStates(t, srv.Pool); states["completed"] != len(evs) || len(states) != 1 {
		t.Errorf("delivery jobs by state %v, want %d completed", states, len(evs))
	}
}

// TestFailingReceiverIsRetriedUntilDelivered: whatever way an endpoint
// fails, its deliveries are retried until it answers, and each event is
// then accepted.
func TestFailingReceiverIsRetriedUntilDelivered(t *testing.T) {
	t.Parallel()
	const purchases = 3 // and the sale's start: four events
	startFor := func(t *testing.T, rc *receiver, timeout time.Duration) *apitest.Server {
		cfg := config(rc.URL())
		// Retries a few hundred milliseconds apart (RetryFor/20 doubling).
		cfg.RetryFor, cfg.Timeout = 5*time.Second, timeout
		srv := start(t, cfg)
		buy(t, []*apitest.Server{srv}, "retry", purchases, 5, 30, 1)
		return srv
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
		srv := startFor(t, rc, 2*time.Second)
		waitFor(t, 30*time.Second, func() error { return allDelivered(t, srv.Pool, purchases+1, rc.URL()) })
		evs := dbEvents(t, srv.Pool)
		got := checkReceived(t, evs, rc)
		if reqs := rc.snapshot(); len(reqs) != len(evs)+failures {
			t.Errorf("receiver got %d requests, want one per event (%d) and the %d it failed", len(reqs), len(evs), failures)
		}
		checkRetries(t, srv, got, "500 Internal Server Error")
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
		// Every event has failed at least twice, and is still retried.
		waitFor(t, 20*time.Second, func() error {
			jobs := deliveryJobs(t, srv.Pool)
			if len(jobs) < purchases+1 {
				return fmt.Errorf("%d deliveries queued", len(jobs))
			}
			for _, j := range jobs {
				if len(j.Errors) < 2 || !errorsMention(j.Errors, "connection refused") {
					return fmt.Errorf("delivery of event %d: errors %q", j.EventID, j.Errors)
				}
				if j.State == "discarded" || j.State == "completed" {
					t.Fatalf("delivery of event %d is %s while the endpoint refused", j.EventID, j.State)
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
		waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, purchases+1, url) })
		got := checkReceived(t, dbEvents(t, srv.Pool), rc)
		for id, reqs := range got {
			if len(reqs) != 1 || reqs[0].attempt < 3 {
				t.Errorf("event %d: %d requests, attempt %d; want one, after two refused", id, len(reqs), reqs[0].attempt)
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
		srv := startFor(t, rc, timeout)
		waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, purchases+1, rc.URL()) })
		got := checkReceived(t, dbEvents(t, srv.Pool), rc)
		for id, reqs := range got {
			if len(reqs) != 2 || !reqs[0].gone || reqs[1].gone {
				t.Errorf("event %d: %d requests, want a first given up and a second accepted", id, len(reqs))
				continue
			}
			// The sender gave up at its timeout, not at River's job timeout
			// (5s more). Its clock starts before the receiver's, so the
			// receiver sees it wait somewhat less.
			if waited := reqs[0].answered.Sub(reqs[0].arrived); waited < timeout/2 || waited > timeout+2*time.Second {
				t.Errorf("event %d: the sender waited %v for an answer, want about the timeout %v", id, waited, timeout)
			}
		}
		checkRetries(t, srv, got, "deadline exceeded")
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
		srv := startFor(t, rc, timeout)
		waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, purchases+1, rc.URL()) })
		got := checkReceived(t, dbEvents(t, srv.Pool), rc)
		for id, reqs := range got {
			// At least once: the shop saw the event twice and dedupes by id.
			if len(reqs) != 2 || reqs[0].status != http.StatusOK || !reqs[0].gone || !reqs[1].accepted() {
				t.Errorf("event %d: requests %+v, want a late 200 and then an accepted one", id, reqs)
			}
		}
		checkRetries(t, srv, got, "deadline exceeded")
	})

	t.Run("slow within the timeout is delivered once", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, func(*http.Request, int) int {
			time.Sleep(300 * time.Millisecond) // a slow shop, well within the second
			return http.StatusAccepted
		})
		srv := startFor(t, rc, 2*time.Second)
		waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, purchases+1, rc.URL()) })
		got := checkReceived(t, dbEvents(t, srv.Pool), rc)
		for id, reqs := range got {
			if len(reqs) != 1 || !reqs[0].accepted() {
				t.Errorf("event %d: %d requests, want one accepted", id, len(reqs))
			}
		}
		for _, j := range deliveryJobs(t, srv.Pool) {
			if j.Attempt != 1 || len(j.Errors) != 0 {
				t.Errorf("delivery of event %d: %d attempts, errors %q; want one clean", j.EventID, j.Attempt, j.Errors)
			}
		}
	})
}

// checkRetries: each delivery took as many attempts as the receiver got
// requests for its event, each attempt numbered, River kept an error
// mentioning what for each failed one, and the last one succeeded.
func checkRetries(t *testing.T, srv *apitest.Server, got map[int64][]request, what string) {
	t.Helper()
	for _, j := range deliveryJobs(t, srv.Pool) {
		reqs := got[j.EventID]
		if j.State != "completed" || j.Attempt != len(reqs) || len(j.Errors) != j.Attempt-1 {
			t.Errorf("delivery of event %d: %s after %d attempts with %d errors, receiver got %d requests",
				j.EventID, j.State, j.Attempt, len(j.Errors), len(reqs))
			continue
		}
		if j.Attempt > 1 && !errorsMention(j.Errors, what) {
			t.Errorf("delivery of event %d: errors %q, want each to mention %q", j.EventID, j.Errors, what)
		}
		for i, r := range reqs {
			if r.attempt != i+1 {
				t.Errorf("event %d: request %d says attempt %d", j.EventID, i+1, r.attempt)
			}
		}
	}
}

func TestGivenUpIsKeptAsFailed(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, always(http.StatusInternalServerError))
	cfg := config(rc.URL())
	cfg.RetryFor = time.Second
	srv := start(t, cfg)
	buy(t, []*apitest.Server{srv}, "failed", 1, 1, 30, 1)
	const events = 2 // the sale's start and the purchase

	waitFor(t, 30*time.Second, func() error {
		if states := jobStates(t, srv.Pool); states["discarded"] != events {
			return fmt.Errorf("delivery jobs by state %v, want %d discarded", states, events)
		}
		return nil
	})
	ctx := context.Background()
	got := byEvent(rc.snapshot())
	for _, j := range deliveryJobs(t, srv.Pool) {
		// Every attempt River allowed was made, and reached the receiver.
		if j.MaxAttempts < 3 || j.Attempt != j.MaxAttempts || len(j.Errors) != j.Attempt || len(got[j.EventID]) != j.Attempt {
			t.Errorf("delivery of event %d: %d of %d attempts, %d errors, %d requests; want every attempt made and failed",
				j.EventID, j.Attempt, j.MaxAttempts, len(j.Errors), len(got[j.EventID]))
		}
		ds, err := srv.Events.Deliveries(ctx, j.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].State != "discarded" || ds[0].URL != rc.URL() || ds[0].FinalizedAt.IsZero() ||
			ds[0].Attempts != j.MaxAttempts || ds[0].MaxAttempts != j.MaxAttempts {
			t.Errorf("Deliveries(%d) = %+v, want one discarded after %d attempts", j.EventID, ds, j.MaxAttempts)
		}
	}
	failed, err := srv.Events.Failed(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	evs := dbEvents(t, srv.Pool)
	if len(failed) != events || len(evs) != events {
		t.Fatalf("Failed lists %d, events %d; want %d", len(failed), len(evs), events)
	}
	// Newest first.
	for i, f := range failed {
		ev := evs[len(evs)-1-i]
		if f.EventID != ev.ID || f.URL != rc.URL() || f.Attempts < 3 ||
			!errorsMention([]string{f.LastError}, "500 Internal Server Error") {
			t.Errorf("Failed[%d] = %+v, want event %d given up with its last error", i, f, ev.ID)
		}
	}
	b, err := srv.Events.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.Failed != events || b.Undelivered != 0 || b.Unpublished != 0 {
		t.Errorf("Backlog = %+v, want %d failed and nothing waiting", b, events)
	}
}
