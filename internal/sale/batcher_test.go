package sale

import (
	"context"
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
