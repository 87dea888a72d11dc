package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
)

// busyNow is how many requests the receiver is answering.
func (rc *receiver) busyNow() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.busy
}

func (rc *receiver) overlapping() []int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.overlaps)
}

// stuck is how many requests the receiver got, and how many of them it
// has yet to answer, read at one time.
func (rc *receiver) stuck() (requests, busy int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests), rc.busy
}

// TestFailingReceiverDoesNotSlowPurchases: with every delivery worker
// stuck on an endpoint that does not answer, purchases go on, and so does
// publishing their events; the deliveries follow once it answers.
func TestFailingReceiverDoesNotSlowPurchases(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(r *http.Request, _ int) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusNoContent
	})
	cfg := config(rc.URL())
	// Two workers, and a timeout longer than the test: each stays stuck
	// on its delivery's first event until released.
	cfg.Workers, cfg.Timeout = 2, time.Minute
	srv := start(t, cfg)
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // before River stops: it waits for its deliveries

	// Occupy both workers. A delivery holds several events, so the sale's
	// start and a purchase may be one; an event published while it is
	// stuck goes in a new one, which the other worker takes.
	first := 0
	for _, busy := rc.stuck(); busy < cfg.Workers; _, busy = rc.stuck() {
		if first == cfg.Workers {
			t.Fatalf("%d purchases, %d deliveries stuck; want every worker stuck", first, busy)
		}
		buy(t, []*apitest.Server{srv}, fmt.Sprintf("first%d", first), 1, 1, 30, 1)
		first++
		// Published and queued, and each delivery running is stuck at
		// the receiver; one still waiting has no free worker.
		waitFor(t, 10*time.Second, func() error {
			if err := allQueued(t, srv.Pool, first+1, rc.URL()); err != nil {
				return err
			}
			states := jobStates(t, srv.Pool)
			if _, busy := rc.stuck(); busy != states["running"] || (states["available"] > 0 && busy < cfg.Workers) {
				return fmt.Errorf("deliveries by state %v, %d stuck at the receiver", states, busy)
			}
			return nil
		})
	}

	const purchases = 50
	took := buy(t, []*apitest.Server{srv}, "stuck", purchases, 5, 30, 5)
	if requests, busy := rc.stuck(); requests != cfg.Workers || busy != cfg.Workers {
		t.Fatalf("the receiver got %d requests, %d of them unanswered; want the %d stuck throughout", requests, busy, cfg.Workers)
	}
	slowest := slices.Max(took)
	t.Logf("%d purchases with every delivery worker stuck: slowest request %v", purchases, slowest)
	// Within what one database call may take (apitest's DBTimeout): had a
	// purchase waited on a delivery, it would have waited the minute.
	if slowest >= 2*time.Second {
		t.Errorf("slowest checkout or purchase took %v with the deliveries stuck", slowest)
	}
	// Published, each queued for delivery, while none can be made.
	events := first + purchases + 1
	waitFor(t, 10*time.Second, func() error {
		if err := allQueued(t, srv.Pool, events, rc.URL()); err != nil {
			return err
		}
		b, err := srv.Events.Backlog(context.Background())
		if err != nil {
			return err
		}
		if b.Unpublished != 0 || b.Undelivered != int64(events) {
			return fmt.Errorf("backlog %+v, want all %d events published and undelivered", b, events)
		}
		return nil
	})

	releaseAll()
	waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, events, rc.URL()) })
	evs := dbEvents(t, srv.Pool)
	for id, reqs := range checkReceived(t, evs, rc) {
		if len(reqs) != 1 {
			t.Errorf("event %d reached the receiver %d times, want once", id, len(reqs))
		}
	}
	checkOneJobEach(t, deliveryJobs(t, srv.Pool), evs, rc.URL())
}

// allQueued: n events are published, none waits in the outbox, and each
// is in a delivery to url.
func allQueued(t testing.TB, pool *pgxpool.Pool, n int, url string) error {
	t.Helper()
	evs := dbEvents(t, pool)
	if outbox := pgtest.Scalar(t, pool, `SELECT count(*) FROM event_outbox`); outbox != 0 || len(evs) != n {
		return fmt.Errorf("%d events published, %d in the outbox; want %d published", len(evs), outbox, n)
	}
	index := byURLAndEvent(deliveryJobs(t, pool))
	for _, ev := range evs {
		if len(index[url][ev.ID]) == 0 {
			return fmt.Errorf("event %d is not queued yet", ev.ID)
		}
	}
	return nil
}

// TestTwoServersDeliverEachAttemptOnce: two servers on one database
// publish each event once and deliver it once between them, never the
// same event at the same time.
func TestTwoServersDeliverEachAttemptOnce(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(*http.Request, int) int {
		time.Sleep(20 * time.Millisecond) // a little work, to widen any overlap
		return http.StatusNoContent
	})
	cfgA, cfgB := config(rc.URL()), config(rc.URL())
	cfgA.UserAgent, cfgB.UserAgent = "flashsale-webhooks/a", "flashsale-webhooks/b"
	a := start(t, cfgA)
	opts := apitest.WeekLong(apitest.DefaultSettings)
	opts.DBURL, opts.Webhooks = a.DBURL, cfgB
	b := apitest.Start(t, opts)

	const purchases = 60
	buy(t, []*apitest.Server{a, b}, "two", purchases, 5, 30, 6)
	waitFor(t, 20*time.Second, func() error { return allDelivered(t, a.Pool, purchases+1, rc.URL()) })

	evs := dbEvents(t, a.Pool)
	checkSequences(t, evs)
	got := checkReceived(t, evs, rc)
	by := map[string]int{}
	for id, reqs := range got {
		if len(reqs) != 1 {
			t.Errorf("event %d delivered %d times, want once between the two servers", id, len(reqs))
		}
		for _, r := range reqs {
			by[r.userAgent]++
		}
	}
	t.Logf("deliveries by server: %v", by)
	if o := rc.overlapping(); len(o) > 0 {
		t.Errorf("events delivered twice at once: %v", o)
	}
	if n := pgtest.Scalar(t, a.Pool, `SELECT count(*) FROM events WHERE type = 'sale.started' AND sale_id = $1`,
		apitest.CurrentSaleID(t, a.URL)); n != 1 {
		t.Errorf("the sale's start published %d times, want once", n)
	}
	// Each event in one delivery, made once.
	checkOneJobEach(t, deliveryJobs(t, a.Pool), evs, rc.URL())
}

// TestSaleLifecycleEventsOnce: a short sale that starts, is paused and
// resumed, sells out and ends, with two servers publishing: each of its
// events is published and delivered once, in the order it happened.
func TestSaleLifecycleEventsOnce(t *testing.T) {
	t.Parallel()
	const units = 5
	settings := sale.Settings{Duration: 6 * time.Second, Units: units, Items: units, PerUserLimit: 1, HoldTTL: time.Minute}
	rc := newReceiver(t, always(http.StatusOK))
	a := apitest.Start(t, apitest.Options{Settings: &settings, Webhooks: config(rc.URL())})
	b := apitest.Start(t, apitest.Options{Settings: &settings, DBURL: a.DBURL, Webhooks: config(rc.URL())})
	ctx := context.Background()
	// The sale running now, and the next one, followed from its start to
	// its end; read together, or a window's end could fall between them.
	var first, next int64
	waitFor(t, 5*time.Second, func() error {
		if err := a.Sales.EnsureSales(ctx, time.Now()); err != nil {
			return err
		}
		return a.Pool.QueryRow(ctx, `SELECT c.id, n.id FROM sales c, sales n
			WHERE c.starts_at <= now() AND c.ends_at > now() AND n.starts_at = c.ends_at`).Scan(&first, &next)
	})

	// Paused as soon as it runs.
	waitFor(t, 2*settings.Duration, func() error {
		_, changed, err := a.Sales.ControlSale(ctx, "test", next, sale.Pause)
		if err == nil && !changed {
			t.Fatalf("sale %d was paused already", next)
		}
		return err
	})
	if _, changed, err := b.Sales.ControlSale(ctx, "test", next, sale.Resume); err != nil || !changed {
		t.Fatalf("resume sale %d: changed %v, %v", next, changed, err)
	}
	buy(t, []*apitest.Server{a, b}, "lifecycle", units, 1, units, 2)

	waitFor(t, 3*settings.Duration, func() error {
		if n := pgtest.Scalar(t, a.Pool, `SELECT count(*) FROM events WHERE sale_id = $1 AND type = 'sale.ended'`, next); n != 1 {
			return errors.New("the sale's end is not published yet")
		}
		return allDelivered(t, a.Pool, 0, rc.URL())
	})

	evs := dbEvents(t, a.Pool)
	bySale := checkSequences(t, evs)
	want := []string{"sale.started", "sale.paused", "sale.resumed"}
	for range units {
		want = append(want, "purchase.completed")
	}
	want = append(want, "sale.sold_out", "sale.ended")
	if got := types(bySale[next]); !slices.Equal(got, want) {
		t.Errorf("sale %d's events in sequence order: %v\nwant %v", next, got, want)
	}
	if got := types(bySale[first]); !slices.Equal(got, []string{"sale.started", "sale.ended"}) {
		t.Errorf("sale %d (unsold) had events %v, want its start and end", first, got)
	}
	for id, reqs := range checkReceived(t, evs, rc) {
		if len(reqs) != 1 {
			t.Errorf("event %d delivered %d times, want once", id, len(reqs))
		}
	}
	checkOneJobEach(t, deliveryJobs(t, a.Pool), evs, rc.URL())
	// Its facts, checked against what the events say about them.
	for _, ev := range bySale[next] {
		switch ev.Type {
		case "sale.sold_out":
			last := pgtest.Scalar(t, a.Pool, `SELECT count(*) FROM purchases WHERE sale_id = $1 AND purchased_at = $2`, next, ev.OccurredAt)
			if last != 1 {
				t.Errorf("sale.sold_out happened at %v, not at the last purchase", ev.OccurredAt)
			}
		case "sale.ended":
			if n := pgtest.Scalar(t, a.Pool, `SELECT count(*) FROM sales WHERE id = $1 AND ends_at = $2`, next, ev.OccurredAt); n != 1 {
				t.Errorf("sale.ended happened at %v, not at the sale's end", ev.OccurredAt)
			}
		}
	}
}

func types(evs []eventRow) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

// TestRedeliver: an event delivered can be delivered again, one at a time
// or all of a time range, to every endpoint.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	rc1, rc2 := newReceiver(t, always(http.StatusNoContent)), newReceiver(t, always(http.StatusNoContent))
	srv := start(t, config(rc1.URL(), rc2.URL()))
	buy(t, []*apitest.Server{srv}, "again", 3, 5, 30, 1)
	waitFor(t, 20*time.Second, func() error { return allDelivered(t, srv.Pool, 4, rc1.URL(), rc2.URL()) })
	evs := dbEvents(t, srv.Pool)
	ctx := context.Background()

	// times waits until each receiver got each event n times over.
	times := func(n func(id int64) int) {
		t.Helper()
		waitFor(t, 20*time.Second, func() error {
			for _, rc := range []*receiver{rc1, rc2} {
				got := byEvent(rc.snapshot())
				for _, ev := range evs {
					if len(got[ev.ID]) != n(ev.ID) {
						return fmt.Errorf("%s got event %d %d times, want %d", rc.URL(), ev.ID, len(got[ev.ID]), n(ev.ID))
					}
				}
			}
			return allDelivered(t, srv.Pool, len(evs), rc1.URL(), rc2.URL())
		})
	}

	again := evs[2]
	queued, err := srv.Events.Redeliver(ctx, []int64{again.ID, evs[len(evs)-1].ID + 1000})
	if err != nil || queued != 2 {
		t.Fatalf("Redeliver(event %d and an unknown one) = %d, %v; want 2 (one per endpoint)", again.ID, queued, err)
	}
	times(func(id int64) int {
		if id == again.ID {
			return 2
		}
		return 1
	})
	ds, err := srv.Events.Deliveries(ctx, again.ID)
	if err != nil || len(ds) != 4 {
		t.Fatalf("Deliveries(%d) = %d, %v; want 4 (two to each endpoint)", again.ID, len(ds), err)
	}
	for _, d := range ds {
		if d.State != "completed" || !d.Delivered || d.Attempts != 1 {
			t.Errorf("Deliveries(%d) has %+v, want each delivered at its first attempt", again.ID, d)
		}
	}
	if jobs := deliveryJobs(t, srv.Pool); !redelivered(jobs[len(jobs)-2:], []int64{again.ID}, rc1.URL(), rc2.URL()) {
		t.Errorf("the redelivery's jobs are %v, want event %d alone to each endpoint", jobs[len(jobs)-2:], again.ID)
	}

	if n, err := srv.Events.RedeliverBetween(ctx, time.Now().Add(-30*24*time.Hour), time.Now().Add(-15*24*time.Hour)); err != nil || n != 0 {
		t.Errorf("RedeliverBetween before any event = %d, %v; want 0", n, err)
	}
	queued, err = srv.Events.RedeliverBetween(ctx, time.Now().Add(-15*24*time.Hour), time.Now().Add(time.Minute))
	if err != nil || queued != 2*len(evs) {
		t.Fatalf("RedeliverBetween over every event = %d, %v; want %d (each event to each endpoint)", queued, err, 2*len(evs))
	}
	times(func(id int64) int {
		if id == again.ID {
			return 3
		}
		return 2
	})
	ids := make([]int64, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	// The events of a time range go in deliveries of up to 100, in order.
	if jobs := deliveryJobs(t, srv.Pool); !redelivered(jobs[len(jobs)-2:], ids, rc1.URL(), rc2.URL()) {
		t.Errorf("the redelivery's jobs are %v, want events %v to each endpoint", jobs[len(jobs)-2:], ids)
	}
	for _, rc := range []*receiver{rc1, rc2} {
		// A redelivery is a delivery of its own: its attempts count anew.
		for id, reqs := range checkReceived(t, evs, rc) {
			for _, r := range reqs {
				if r.attempt != 1 {
					t.Errorf("event %d: a delivery at attempt %d, want each first time right", id, r.attempt)
				}
			}
		}
	}
}

// redelivered: jobs are one delivery of ids to each of urls, completed.
func redelivered(jobs []job, ids []int64, urls ...string) bool {
	var got []string
	for _, j := range jobs {
		if !slices.Equal(j.EventIDs, ids) || !slices.Equal(j.Delivered, ids) || j.State != "completed" {
			return false
		}
		got = append(got, j.URL)
	}
	slices.Sort(got)
	return slices.Equal(got, slices.Sorted(slices.Values(urls)))
}
