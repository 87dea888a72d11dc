package readshare

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Callers arriving during a read wait for it; an answer serves each caller
// while younger than that caller's maxAge, counted from when its read
// began; maxAge 0 always reads, and its answer serves the others; errors
// are not kept. synctest's clock makes the ages exact.
func TestLatestSharesOneReadPerAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var n atomic.Int64
		release := make(chan struct{})
		fail := false
		l := NewLatest(func(context.Context) (int64, error) {
			<-release
			if fail {
				return 0, errors.New("database away")
			}
			return n.Add(1), nil
		})
		get := func(what string, maxAge time.Duration, want int64) {
			t.Helper()
			if v, _, err := l.Get(ctx, maxAge); err != nil || v != want {
				t.Fatalf("%s: got %d, %v; want %d", what, v, err, want)
			}
		}

		const callers = 10
		got := make(chan int64, callers)
		for range callers {
			go func() {
				v, _, _ := l.Get(ctx, time.Second)
				got <- v
			}()
		}
		synctest.Wait() // one caller reads, the others wait on it
		close(release)
		for range callers {
			if v := <-got; v != 1 {
				t.Fatalf("a caller during the first read got %d, want its answer (1)", v)
			}
		}
		if r := l.Reads(); r != 1 {
			t.Fatalf("%d callers at once: %d reads, want 1", callers, r)
		}

		time.Sleep(500 * time.Millisecond) // the answer ages on synctest's clock
		get("half a second later, maxAge 1s", time.Second, 1)
		get("half a second later, maxAge 100ms", 100*time.Millisecond, 2)
		get("the newer answer serves maxAge 1s", time.Second, 2)
		get("maxAge 0", 0, 3)
		get("maxAge 0's answer serves the others", time.Hour, 3)
		time.Sleep(time.Second)
		get("a second later, maxAge 1s", time.Second, 4)

		time.Sleep(time.Second)
		fail = true
		if _, _, err := l.Get(ctx, time.Second); err == nil {
			t.Fatal("a failed read answered without error")
		}
		fail = false
		get("the failure is not kept", time.Second, 5)
		if r := l.Reads(); r != 6 {
			t.Errorf("%d reads, want 6", r)
		}
	})
}

// An answer built on an earlier read (an item page of the sale a shared
// read named) is kept for maxAge from that earlier read, not its own.
func TestDoSinceAgesFromTheEarlierRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(time.Second)
		reads := 0
		read := func(context.Context) (int, time.Time, error) {
			reads++
			return reads, time.Now().Add(-900 * time.Millisecond), nil
		}
		for _, step := range []struct {
			after time.Duration
			want  int
		}{{0, 1}, {50 * time.Millisecond, 1}, {100 * time.Millisecond, 2}} {
			time.Sleep(step.after) // on synctest's clock
			if v, err := DoSince(r, context.Background(), "page", read); err != nil || v != step.want {
				t.Fatalf("after %v more: got %d, %v; want %d", step.after, v, err, step.want)
			}
		}
	})
}
