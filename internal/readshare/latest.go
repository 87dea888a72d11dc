package readshare

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Latest is one read shared by callers that differ in how old an answer
// they accept (the polled API answers, an event stream, a metrics scrape),
// so that together they cost one read per the shortest of their ages. Like
// Reads, an answer is served only while younger than the caller's maxAge,
// counted from when its read began; callers arriving during a read wait
// for it; errors are not kept.
type Latest[V any] struct {
	read   func(context.Context) (V, error)
	flight singleflight.Group
	reads  atomic.Int64

	mu    sync.Mutex
	last  V
	began time.Time // zero: nothing kept
}

// NewLatest shares the answers of read.
func NewLatest[V any](read func(context.Context) (V, error)) *Latest[V] {
	return &Latest[V]{read: read}
}

// Reads is how many times read has run.
func (l *Latest[V]) Reads() int64 { return l.reads.Load() }

// Get returns an answer whose read began less than maxAge ago, and when it
// began. With maxAge 0 or less it reads for this caller alone, with the
// caller's context, and keeps the answer for the others.
func (l *Latest[V]) Get(ctx context.Context, maxAge time.Duration) (V, time.Time, error) {
	if maxAge <= 0 {
		return l.readAndKeep(ctx)
	}
	if v, began, ok := l.fresh(maxAge); ok {
		return v, began, nil
	}
	// Callers wanting the same age share a flight: a caller with a longer
	// maxAge may not be handed an answer it would have refused.
	key := strconv.FormatInt(int64(maxAge), 10)
	v, began, err := share(ctx, &l.flight, key, func(ctx context.Context) (any, time.Time, error) {
		// A caller that found the answer stale just before the last read
		// ended arrives here after it: no second read.
		if v, began, ok := l.fresh(maxAge); ok {
			return v, began, nil
		}
		return l.readAndKeep(ctx)
	})
	if v == nil {
		var zero V
		return zero, began, err
	}
	return v.(V), began, err
}

func (l *Latest[V]) readAndKeep(ctx context.Context) (V, time.Time, error) {
	began := time.Now()
	l.reads.Add(1)
	v, err := l.read(ctx)
	if err == nil {
		l.mu.Lock()
		if !began.Before(l.began) { // reads with maxAge 0 may overlap
			l.last, l.began = v, began
		}
		l.mu.Unlock()
	}
	return v, began, err
}

func (l *Latest[V]) fresh(maxAge time.Duration) (V, time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.began.IsZero() || time.Since(l.began) >= maxAge {
		var zero V
		return zero, time.Time{}, false
	}
	return l.last, l.began, true
}
