package salewatch_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/salewatch"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// TestTenThousandWatchersOneReadPerSecond: 10,000 watchers cost the
// database one read per second, every watcher sees every change, and
// watchers that never take their snapshots hold up no one and keep only
// the newest.
func TestTenThousandWatchersOneReadPerSecond(t *testing.T) {
	const (
		active = 9_900
		idle   = 100 // never receive
		rounds = 3   // changes of the counts after the first snapshot
	)
	env := saletest.New(t)
	w := salewatch.New(env.Service, time.Second)
	start := time.Now()

	// seen[h] is done once every active watcher has seen units_held == h.
	seen := make([]sync.WaitGroup, rounds+1)
	for h := range seen {
		seen[h].Add(active)
	}
	var errs sync.Map
	var watchers sync.WaitGroup
	for i := range active {
		sub := w.Subscribe()
		watchers.Go(func() {
			defer sub.Close()
			next := int64(0) // the lowest level this watcher has not reported
			for next <= rounds {
				snap := <-sub.C
				if snap.Err != nil {
					errs.Store(i, snap.Err)
					for ; next <= rounds; next++ {
						seen[next].Done()
					}
					return
				}
				for ; next <= snap.Summary.UnitsHeld && next <= rounds; next++ {
					seen[next].Done()
				}
			}
		})
	}
	idlers := make([]*salewatch.Subscription, idle)
	for i := range idlers {
		idlers[i] = w.Subscribe()
		defer idlers[i].Close()
	}

	wait(t, &seen[0], "every watcher's first snapshot")
	for h := 1; h <= rounds; h++ {
		saletest.Hold(t, env, fmt.Sprintf("user-%d", h), int64(h))
		wait(t, &seen[h], fmt.Sprintf("every watcher to see units_held = %d", h))
	}
	elapsed := time.Since(start)
	watchers.Wait()
	errs.Range(func(k, v any) bool {
		t.Fatalf("watcher %v got an error snapshot: %v", k, v)
		return false
	})

	reads := w.Reads()
	t.Logf("%d watchers (%d idle), %d changes: %d reads in %v", active+idle, idle, rounds, reads, elapsed.Round(time.Millisecond))
	if max := int64(elapsed.Seconds()) + 1; reads > max {
		t.Errorf("%d reads in %v: want at most %d (one per second, plus the first)", reads, elapsed, max)
	}
	if reads < rounds+1 {
		t.Errorf("%d reads, but %d different states were seen", reads, rounds+1)
	}
	for i, sub := range idlers {
		if n := len(sub.C); n != 1 {
			t.Fatalf("idle watcher %d holds %d snapshots, want only the newest", i, n)
		}
		if snap := <-sub.C; snap.Err != nil || snap.Summary.UnitsHeld != rounds {
			t.Fatalf("idle watcher %d holds units_held %d (err %v), want the newest, %d", i, snap.Summary.UnitsHeld, snap.Err, rounds)
		}
	}
}

// TestReadsOnlyWhileWatched: with no watcher left the reading stops, and a
// new watcher starts it again and sees what changed meanwhile.
func TestReadsOnlyWhileWatched(t *testing.T) {
	env := saletest.New(t)
	w := salewatch.New(env.Service, 50*time.Millisecond)
	sub := w.Subscribe()
	receive(t, sub)
	sub.Close()
	testutil.Poll(t, 5*time.Second, func() error {
		if w.Watching() {
			return errors.New("still reading after the last watcher left")
		}
		return nil
	})
	reads := w.Reads()
	saletest.Hold(t, env, "user-1", 1) // a change no one watches
	if got := w.Reads(); got != reads {
		t.Fatalf("%d reads with no watcher, want %d", got, reads)
	}
	sub = w.Subscribe()
	defer sub.Close()
	// The first snapshot may be the last one read, if it is younger than
	// the interval; the read the new watch starts follows it.
	for receive(t, sub).Summary.UnitsHeld != 1 {
	}
}

// A watch that starts long after the last one gets a snapshot at once even
// though nothing changed since.
func TestFirstSnapshotWithoutChange(t *testing.T) {
	env := saletest.New(t)
	const interval = 50 * time.Millisecond
	w := salewatch.New(env.Service, interval)
	sub := w.Subscribe()
	last := receive(t, sub)
	sub.Close()
	// Until the last read is older than the interval it would be sent as
	// it is; after, the next read must be, changed or not.
	testutil.Poll(t, 5*time.Second, func() error {
		if w.Watching() || time.Since(last.ReadAt) <= interval {
			return errors.New("the last read is still fresh")
		}
		return nil
	})
	sub = w.Subscribe()
	defer sub.Close()
	if snap := receive(t, sub); snap == last || snap.Summary.ID != env.Sale.ID {
		t.Fatalf("first snapshot of a later watch: %+v, want a new read of sale %d", snap, env.Sale.ID)
	}
}

func receive(t *testing.T, sub *salewatch.Subscription) *salewatch.Snapshot {
	t.Helper()
	select {
	case snap := <-sub.C:
		if snap.Err != nil {
			t.Fatalf("snapshot: %v", snap.Err)
		}
		return snap
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot within 10s")
		return nil
	}
}

func wait(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("waiting for %s: not within 30s", what)
	}
}

// Every watcher hears which items changed, with their counts, from one
// read of the items per interval however many watch; a watcher that took
// none of its snapshots meanwhile still gets every change, in the one it
// holds.
func TestWatchersGetChangedItems(t *testing.T) {
	const active = 1000
	env := saletest.New(t, saletest.WithSettings(sale.Settings{Duration: time.Hour, Units: 20, Items: 10, PerUserLimit: 10, HoldTTL: time.Hour}))
	w := salewatch.New(env.Service, 100*time.Millisecond)
	start := time.Now()
	idle := w.Subscribe()
	defer idle.Close()
	// heard[i] is done once every active watcher has seen item i held.
	heard := map[int32]*sync.WaitGroup{3: {}, 7: {}}
	for _, wg := range heard {
		wg.Add(active)
	}
	var watchers sync.WaitGroup
	for range active {
		sub := w.Subscribe()
		watchers.Go(func() {
			defer sub.Close()
			left := map[int32]bool{3: true, 7: true}
			for len(left) > 0 {
				snap := <-sub.C
				for _, c := range snap.Items {
					if left[c.ItemID] && c.HeldUnits == 1 && c.FreeUnits == 1 {
						delete(left, c.ItemID)
						heard[c.ItemID].Done()
					}
				}
			}
		})
	}
	// Subscribed, and the first read (which lists no change) done.
	testutil.Poll(t, 10*time.Second, func() error {
		if w.ItemReads() == 0 {
			return errors.New("no read of the items yet")
		}
		return nil
	})
	saletest.Hold(t, env, "ann", 3)
	wait(t, heard[3], "every watcher to hear of item 3")
	saletest.Hold(t, env, "bob", 7)
	wait(t, heard[7], "every watcher to hear of item 7")
	elapsed := time.Since(start)
	watchers.Wait()

	if reads, most := w.ItemReads(), int64(elapsed/(100*time.Millisecond))+1; reads > most {
		t.Errorf("%d reads of the items in %v by %d watchers: want at most %d, one per interval", reads, elapsed, active+1, most)
	}
	snap := <-idle.C
	got := map[int32]sale.ItemCount{}
	for _, c := range snap.Items {
		got[c.ItemID] = c
	}
	for _, id := range []int32{3, 7} {
		if c := got[id]; c.FreeUnits != 1 || c.HeldUnits != 1 {
			t.Errorf("the idle watcher's snapshot has item %d as %+v, want 1 free and 1 held (items %+v)", id, c, snap.Items)
		}
	}
	if snap.ItemsReadAt.IsZero() || snap.NextSaleStart.IsZero() {
		t.Errorf("snapshot read at %v, next sale at %v: want both", snap.ItemsReadAt, snap.NextSaleStart)
	}
}
