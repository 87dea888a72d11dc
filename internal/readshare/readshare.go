// Package readshare lets the callers of one read share its answer for a
// short while within a process: however many clients poll, each distinct
// read runs at most once per maxAge per server, and callers that arrive
// while it runs wait for that one run instead of starting their own. For
// display reads only (a sale's counts, a page of items): nothing that
// decides a checkout or a purchase may read through it.
package readshare

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Reads holds the answers shared; a nil *Reads shares nothing.
type Reads struct {
	maxAge time.Duration
	flight singleflight.Group

	mu   sync.Mutex
	done map[string]answer
}

type answer struct {
	value any
	at    time.Time
}

// maxAnswers bounds the answers kept: keys come from clients (item
// page bounds), so when there are more the stale ones go, then all.
const maxAnswers = 1024

// New shares answers for up to maxAge; 0 or less returns nil (no sharing).
func New(maxAge time.Duration) *Reads {
	if maxAge <= 0 {
		return nil
	}
	return &Reads{maxAge: maxAge, done: make(map[string]answer)}
}

// Do answers key from a read at most maxAge old, else runs read once for
// every caller waiting on key. Errors are not kept: the next caller tries
// again. read runs detached from any one caller's cancellation (it is
// bounded by the service's timeout), so a client that goes away does not
// fail the others waiting on the same read.
func Do[V any](r *Reads, ctx context.Context, key string, read func(context.Context) (V, error)) (V, error) {
	if r == nil {
		return read(ctx)
	}
	if v, ok := r.fresh(key); ok {
		return v.(V), nil
	}
	ch := r.flight.DoChan(key, func() (any, error) {
		start := time.Now() // an answer's age counts from when its read began
		v, err := read(context.WithoutCancel(ctx))
		if err == nil {
			r.keep(key, v, start)
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

func (r *Reads) fresh(key string) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.done[key]
	if !ok || time.Since(e.at) >= r.maxAge {
		return nil, false
	}
	return e.value, true
}

func (r *Reads) keep(key string, v any, at time.Time) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.done) >= maxAnswers {
		for k, e := range r.done {
			if now.Sub(e.at) >= r.maxAge {
				delete(r.done, k)
			}
		}
		if len(r.done) >= maxAnswers {
			clear(r.done)
		}
	}
	r.done[key] = answer{value: v, at: at}
}
