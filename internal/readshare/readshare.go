// Package readshare lets the callers of one read share its answer for a
// short while within a process: however many clients poll, each distinct
// read runs at most once per maxAge per server, and callers that arrive
// while it runs wait for that one run instead of starting their own. An
// answer is never kept longer than maxAge from when its read began, and
// errors are not kept. For display reads only (a sale's counts, a page of
// items): nothing that decides a checkout or a purchase may read through it.
package readshare

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Reads holds the answers shared, one per key; a nil *Reads shares nothing.
type Reads struct {
	maxAge time.Duration
	flight singleflight.Group

	mu   sync.Mutex
	done map[string]answer
}

type answer struct {
	value any
	began time.Time
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
	return DoSince(r, ctx, key, func(ctx context.Context) (V, time.Time, error) {
		began := time.Now()
		v, err := read(ctx)
		return v, began, err
	})
}

// DoSince is Do for a read built on an earlier shared answer (an item page
// of the sale a shared read named current): read returns when the oldest
// read it used began, and the answer is kept for maxAge from then, not from
// when read itself began.
func DoSince[V any](r *Reads, ctx context.Context, key string, read func(context.Context) (V, time.Time, error)) (V, error) {
	if r == nil {
		v, _, err := read(ctx)
		return v, err
	}
	if v, ok := r.fresh(key); ok {
		return v.(V), nil
	}
	v, _, err := share(ctx, &r.flight, key, func(ctx context.Context) (any, time.Time, error) {
		// A caller that found key stale just before the last read of it
		// ended arrives here after it: no second read.
		if v, ok := r.fresh(key); ok {
			return v, time.Time{}, nil
		}
		v, began, err := read(ctx)
		if err == nil {
			r.keep(key, v, began)
		}
		return v, began, err
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}

func (r *Reads) fresh(key string) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.done[key]
	if !ok || time.Since(e.began) >= r.maxAge {
		return nil, false
	}
	return e.value, true
}

func (r *Reads) keep(key string, v any, began time.Time) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.done) >= maxAnswers {
		for k, e := range r.done {
			if now.Sub(e.began) >= r.maxAge {
				delete(r.done, k)
			}
		}
		if len(r.done) >= maxAnswers {
			clear(r.done)
		}
	}
	r.done[key] = answer{value: v, began: began}
}

// share runs read once for every caller waiting on key, detached from any
// one caller's cancellation; a caller whose context ends stops waiting.
func share(ctx context.Context, g *singleflight.Group, key string,
	read func(context.Context) (any, time.Time, error)) (any, time.Time, error) {
	type result struct {
		v     any
		began time.Time
	}
	ch := g.DoChan(key, func() (any, error) {
		v, began, err := read(context.WithoutCancel(ctx))
		return result{v, began}, err
	})
	select {
	case res := <-ch:
		r := res.Val.(result)
		return r.v, r.began, res.Err
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
}
