package sale

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// sharedReads lets the callers of one display read (a sale's counts, a page
// of items) share its answer for up to maxAge within a process: however
// many clients poll, each distinct read reaches the database at most once
// per maxAge per server, and callers that arrive while it runs wait for
// that one read instead of starting their own. A checkout or a purchase
// never reads what it holds: its counts are for display only, at most
// maxAge old, like the live page's.
type sharedReads struct {
	maxAge time.Duration
	flight singleflight.Group

	mu   sync.Mutex
	done map[string]sharedRead
}

type sharedRead struct {
	value any
	at    time.Time
}

// maxSharedReads bounds the answers kept: keys come from clients (item
// page bounds), so when there are more the stale ones go, then all.
const maxSharedReads = 1024

func newSharedReads(maxAge time.Duration) *sharedReads {
	if maxAge <= 0 {
		return nil
	}
	return &sharedReads{maxAge: maxAge, done: make(map[string]sharedRead)}
}

// do answers key from a read at most maxAge old, else runs read once for
// every caller waiting on key. Errors are not kept: the next caller tries
// again. read runs detached from any one caller's cancellation (it is
// bounded by the service's timeout), so a client that goes away does not
// fail the others waiting on the same read.
func sharedDo[V any](r *sharedReads, ctx context.Context, key string, read func(context.Context) (V, error)) (V, error) {
	if r == nil {
		return read(ctx)
	}
	if v, ok := r.fresh(key); ok {
		return v.(V), nil
	}
	ch := r.flight.DoChan(key, func() (any, error) {
		v, err := read(context.WithoutCancel(ctx))
		if err == nil {
			r.keep(key, v)
		}
		return v, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			var zero V
			return zero, res.Err
		}
		return res.Val.(V), nil
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

func (r *sharedReads) fresh(key string) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.done[key]
	if !ok || time.Since(e.at) >= r.maxAge {
		return nil, false
	}
	return e.value, true
}

func (r *sharedReads) keep(key string, v any) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.done) >= maxSharedReads {
		for k, e := range r.done {
			if now.Sub(e.at) >= r.maxAge {
				delete(r.done, k)
			}
		}
		if len(r.done) >= maxSharedReads {
			clear(r.done)
		}
	}
	r.done[key] = sharedRead{value: v, at: now}
}
