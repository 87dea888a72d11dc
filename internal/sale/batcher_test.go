package sale

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The queries are written for at most one request per user (checkout) or
// code (purchase) in a batch: one statement does not see its own writes.
// The batcher keeps a second request with the same key for a later batch,
// and still answers every request with its own result.
func TestBatcherNeverPutsOneKeyTwiceInABatch(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var batches [][]string
	// One worker, and a run that takes a moment, so requests pile up and
	// batches fill.
	b := newBatcher(1, time.Second, func(s string) string { return s[:2] },
		func(_ time.Time, ins []string) ([]string, error) {
			mu.Lock()
			batches = append(batches, append([]string(nil), ins...))
			mu.Unlock()
			time.Sleep(time.Millisecond) // simulated database time, not synchronisation
			out := make([]string, len(ins))
			for i, in := range ins {
				out[i] = "done " + in
			}
			return out, nil
		})
	t.Cleanup(b.close)

	const users, perUser = 20, 15
	var wg sync.WaitGroup
	for u := range users {
		for i := range perUser {
			in := fmt.Sprintf("%02d-%d", u, i)
			wg.Go(func() {
				out, err := b.do(context.Background(), in)
				if err != nil || out != "done "+in {
					t.Errorf("request %s answered %q, %v", in, out, err)
				}
			})
		}
	}
	wg.Wait()

	total := 0
	for _, batch := range batches {
		seen := map[string]bool{}
		for _, in := range batch {
			if seen[in[:2]] {
				t.Fatalf("key %s twice in one batch: %v", in[:2], batch)
			}
			seen[in[:2]] = true
		}
		total += len(batch)
	}
	if total != users*perUser {
		t.Fatalf("%d requests ran, want %d", total, users*perUser)
	}
	if len(batches) < perUser {
		t.Fatalf("%d batches for %d requests per key, want at least %d", len(batches), perUser, perUser)
	}
	t.Logf("%d requests in %d batches", total, len(batches))
}

// A request kept for a later batch (its key was already in the batch being
// formed) and abandoned by its caller meanwhile never runs.
func TestBatcherDropsARequestAbandonedWhileDeferred(t *testing.T) {
	t.Parallel()
	gate, stop := make(chan struct{}), make(chan struct{})
	started := make(chan []string, 8)
	b := newBatcher(1, time.Second, func(s string) string { return s[:1] },
		func(_ time.Time, ins []string) ([]string, error) {
			started <- append([]string(nil), ins...)
			select {
			case <-gate:
			case <-stop:
			}
			return ins, nil
		})
	t.Cleanup(b.close)
	t.Cleanup(func() { close(stop) }) // first: a failed test leaves no batch blocked
	do := func(ctx context.Context, in string) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := b.do(ctx, in)
			done <- err
		}()
		return done
	}

	x := do(context.Background(), "x0")
	if got := <-started; len(got) != 1 || got[0] != "x0" {
		t.Fatalf("first batch %v", got)
	}
	// a1 and a2 share a key: queued together, a2 waits for the batch after a1's.
	// Polled: each goroutine queues on its own schedule.
	queued := func(n int) {
		for limit := time.Now().Add(5 * time.Second); len(b.queue) != n; time.Sleep(time.Millisecond) {
			if time.Now().After(limit) {
				t.Fatalf("%d requests queued, want %d", len(b.queue), n)
			}
		}
	}
	a1 := do(context.Background(), "a1")
	queued(1)
	ctx2, abandon := context.WithCancel(context.Background())
	a2 := do(ctx2, "a2")
	queued(2)
	gate <- struct{}{}
	if got := <-started; len(got) != 1 || got[0] != "a1" {
		t.Fatalf("second batch %v, want [a1] (a2 kept for later)", got)
	}
	abandon()
	if err := <-a2; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned a2: %v", err)
	}
	gate <- struct{}{}
	z := do(context.Background(), "z0")
	if got := <-started; len(got) != 1 || got[0] != "z0" {
		t.Fatalf("batch after a2 was abandoned: %v, want [z0]", got)
	}
	gate <- struct{}{}
	for _, done := range []chan error{x, a1, z} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
