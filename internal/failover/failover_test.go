package failover_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/failover"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/replica"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// dbTimeout is the server's DB_TIMEOUT in these tests: short, so that a
// replication stall outlives it quickly.
const dbTimeout = 750 * time.Millisecond

// herdSettings: stock that lasts the whole run (a 201 after the failover
// must be possible) and a cap the herd's users reach.
var herdSettings = sale.Settings{Duration: time.Hour, Units: 20000, Items: 200, PerUserLimit: 5, HoldTTL: 10 * time.Minute}

// TestHandFailover: a herd checks out and buys through the server, whose
// DATABASE_URL names a primary and its synchronous standby; the primary's
// machine is lost (SIGKILL of every process) and the standby promoted by
// hand. Every answer given must be true in the promoted database, and the
// server must answer 201 again without a restart.
func TestHandFailover(t *testing.T) { handFailover(t, false) }

// TestHandFailoverAfterStall: the same, with replication stalled for twice
// DB_TIMEOUT before the primary is lost. The batches that reach their
// deadline meanwhile are cancelled in their COMMIT's wait for the standby:
// committed on the primary alone, they must not be acknowledged.
func TestHandFailoverAfterStall(t *testing.T) { handFailover(t, true) }

func handFailover(t *testing.T, stall bool) {
	t.Parallel()
	pair, srv, saleID := startOnPair(t)

	h := &failover.Herd{Base: srv.URL, Clients: 12, Users: 5000, HotUsers: 20, Items: herdSettings.Items}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	count := h.Count
	start := time.Now()
	testutil.Poll(t, 30*time.Second, func() error { return atLeast("201s before the failover", count(http.StatusCreated, start), 200) })

	if stall {
		resume := pair.StallReplication(t)
		t.Cleanup(resume)
		stalled := time.Now()
		// The stall is the scenario: it lasts past DB_TIMEOUT, until
		// batches have been cancelled in their wait for the standby.
		testutil.Poll(t, 30*time.Second, func() error {
			if time.Since(stalled) < 2*dbTimeout {
				return errWait
			}
			return atLeast("503s during the stall", count(http.StatusServiceUnavailable, stalled), 1)
		})
	}
	lost := time.Now()
	pair.Primary.Kill()
	// The operator's reaction time: promotion by hand, a second after the
	// loss. Part of the scenario, not a wait for anything.
	time.Sleep(time.Second)
	pair.Standby.Promote(t)
	testutil.Poll(t, 30*time.Second, func() error {
		o := h.Outage(lost)
		if !o.Recovered {
			return errWait
		}
		if _, ok := h.BackToFull(lost); !ok {
			return errWait
		}
		return atLeast("201s after recovery", count(http.StatusCreated, lost.Add(o.FirstCreated)), 100)
	})
	stop()
	<-done

	o := h.Outage(lost)
	full, _ := h.BackToFull(lost)
	rep, err := failover.Verify(context.Background(), pair.Standby.URL(replica.Database), saleID, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stall=%v: %v; %v; full throughput again at +%.2fs; %d answers in %.1fs",
		stall, rep, o, full.Seconds(), len(h.Answers), time.Since(start).Seconds())
	if rep.Missing() != 0 || rep.Oversold != 0 || rep.CapBreaches != 0 {
		t.Errorf("after the failover: %v", rep)
	}
	if rep.Holds == 0 || rep.Purchases == 0 || rep.Refusals == 0 {
		t.Errorf("the herd got no hold, purchase or refusal to check: %v", rep)
	}
	if !o.Recovered || o.Answers503 == 0 {
		t.Errorf("outage as the herd saw it: %v", o)
	}
	if len(h.Unexpected) > 0 {
		t.Errorf("%d unexpected answers, first: %s", len(h.Unexpected), h.Unexpected[0])
	}
	apitest.Expect(t, "readyz after the failover", apitest.Get(t, srv.URL+"/readyz"), http.StatusOK, "")
}

// TestStalledStandbyAnswers: while the synchronous standby gets nothing, a
// purchase's COMMIT is cut short at DB_TIMEOUT and committed on the primary
// alone. Its answer, and that of its repeat (which finds the purchase
// already made and writes nothing), must be 503 "may have been stored",
// never 200: once the primary is lost and the standby promoted, the
// purchase is not there, and the hold still is.
func TestStalledStandbyAnswers(t *testing.T) {
	t.Parallel()
	pair, srv, saleID := startOnPair(t)
	hold := apitest.Held(t, srv.URL, "ana", 1)

	resume := pair.StallReplication(t)
	t.Cleanup(resume)
	for _, what := range []string{"purchase while the standby stalls", "its repeat"} {
		r := apitest.Purchase(t, srv.URL, hold)
		apitest.Expect(t, what, r, http.StatusServiceUnavailable, "unavailable")
		if msg, _ := r.Body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "may have been stored") {
			t.Errorf("%s answered %q, want it to say the purchase may have been stored", what, msg)
		}
	}
	pair.Primary.Kill()
	pair.Standby.Promote(t)

	h := &failover.Herd{Holds: map[string]failover.Hold{hold["code"].(string): {User: "ana", Item: 1}},
		Purchases: map[string]failover.Bought{}, Refusals: map[failover.Refusal]int{}}
	rep, err := failover.Verify(context.Background(), pair.Standby.URL(replica.Database), saleID, h)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Missing() != 0 {
		t.Errorf("after the failover: %v", rep)
	}
	testutil.Poll(t, 30*time.Second, func() error {
		if r := apitest.Purchase(t, srv.URL, hold); r.Status != http.StatusOK {
			return fmt.Errorf("purchase after the failover answered %d: %s", r.Status, r.Raw)
		}
		return nil
	})
}

// startOnPair starts a primary with a synchronous standby, migrates it and
// runs the server on both hosts with herdSettings' sale.
func startOnPair(t *testing.T) (*replica.Pair, *apitest.Server, int64) {
	t.Helper()
	pair := replica.Start(t, true)
	migrate(t, pair.Primary.URL(replica.Database))
	settings := herdSettings
	srv := apitest.Start(t, apitest.Options{DBURL: pair.URL(), DBTimeout: dbTimeout, Settings: &settings})
	return pair, srv, apitest.CurrentSaleID(t, srv.URL)
}
