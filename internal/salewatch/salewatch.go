// Package salewatch is the process's one read of the current sale (Current),
// shared by everything that shows it, and the watchers of it (the live
// page's event streams), kept up to date while costing the database at
// most one read per interval per process however many watch: one goroutine
// reads, and only while someone watches, and hands each read that changed
// something to every watcher. It is for display only: nothing that decides
// a checkout or a purchase reads what it holds.
package salewatch

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
)

// Snapshot is one read of the current sale and its counts, shared by every
// watcher that gets it: do not modify it.
type Snapshot struct {
	Summary sale.Summary
	// Err is why there is no Summary (no sale open, database away); the
	// same errors the API maps to its error codes.
	Err error
	// ReadAt is when the read began.
	ReadAt time.Time

	// The watchers' snapshots (Subscribe) carry what Current's do not:

	// Items are the items of Summary's sale whose free or held units
	// changed since the watcher's previous snapshot of the same sale, with
	// their counts as of this read, in item order. A watcher's first
	// snapshot, and its first of a new sale, carry no such change: read
	// the items themselves then.
	Items []sale.ItemCount
	// ItemsReadAt is when the read of Items began.
	ItemsReadAt time.Time
	// NextSaleStart is when the next sale starts; zero while none exists.
	NextSaleStart time.Time
}

// Watcher is the once-per-interval reader and its watchers. Its zero value
// is not usable; call New or NewWatcher.
type Watcher struct {
	current  *Current
	interval time.Duration

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	running bool      // the reading goroutine exists
	latest  *Snapshot // nil before the first read

	// Owned by the reading goroutine: the item counts of sale countsOf at
	// its last read, which the next read's Items are told against.
	counts    map[int32]sale.ItemCount
	countsOf  int64
	itemReads atomic.Int64
}

// New returns a Watcher with a Current of its own.
func New(sales *sale.Service, interval time.Duration) *Watcher {
	return NewWatcher(NewCurrent(sales), interval)
}

// NewWatcher returns a Watcher that asks current at most once per interval
// for a read at most interval old: reads the other users of current made
// meanwhile serve it too.
func NewWatcher(current *Current, interval time.Duration) *Watcher {
	return &Watcher{current: current, interval: interval, subs: make(map[*Subscription]struct{})}
}

// Reads is how many times the sale was read from the database through the
// watcher's Current, by the watcher or its other users, for tests.
func (w *Watcher) Reads() int64 { return w.current.Reads() }

// ItemReads is how many times the watcher read the items' counts, for
// tests: at most once per interval, however many watch.
func (w *Watcher) ItemReads() int64 { return w.itemReads.Load() }

// Watching reports whether the reading goroutine runs: from the first
// Subscribe until it notices that the last watcher has gone.
func (w *Watcher) Watching() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running
}

// Subscription is one watcher. C holds at most one snapshot, the newest: a
// watcher that falls behind skips the snapshots it missed instead of
// holding up the others.
type Subscription struct {
	C <-chan *Snapshot
	c chan *Snapshot
	w *Watcher
	// waiting is set while the watcher has had no snapshot yet: the next
	// read goes to it even if nothing changed. Guarded by w.mu.
	waiting bool
}

// Subscribe adds a watcher. Its first snapshot comes at once when a recent
// one exists, else after the read that Subscribe starts. Close it when done.
func (w *Watcher) Subscribe() *Subscription {
	c := make(chan *Snapshot, 1)
	s := &Subscription{C: c, c: c, w: w}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs[s] = struct{}{}
	// While the goroutine runs, latest is as fresh as the reads allow; a
	// snapshot left from an earlier watch may be hours old and is not sent.
	if w.latest != nil && (w.running || time.Since(w.latest.ReadAt) < w.interval) {
		c <- w.latest
	} else {
		s.waiting = true
	}
	if !w.running {
		w.running = true
		go w.run()
	}
	return s
}

// Close removes the watcher; the reads stop with the last one. Safe to call
// more than once.
func (s *Subscription) Close() {
	s.w.mu.Lock()
	delete(s.w.subs, s)
	s.w.mu.Unlock()
}

// run asks for a read once per interval while anyone watches. Only this
// goroutine asks, so its reads never overlap and begin at least an interval
// apart, also across a stop and a restart (it waits out the interval since
// latest); a read another user of Current made meanwhile serves instead.
func (w *Watcher) run() {
	// The counts may be hours old at this watch, which starts from a read
	// of its own. Set here, not when the last goroutine returns: a new one
	// may start as soon as that one has said it stops (running, under mu).
	w.counts, w.countsOf = nil, 0
	for {
		w.mu.Lock()
		if len(w.subs) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		var wait time.Duration
		prev := w.latest
		if prev != nil {
			wait = w.interval - time.Since(prev.ReadAt)
		}
		w.mu.Unlock()
		if wait > 0 {
			time.Sleep(wait) // pacing, not synchronisation: watchers come and go meanwhile
			w.mu.Lock()
			idle := len(w.subs) == 0
			if idle {
				w.running = false
			}
			w.mu.Unlock()
			if idle {
				return
			}
		}
		// The service bounds each query by its own timeout; the read does
		// not belong to any one watcher's request, so no request's context
		// applies.
		snap := w.withItems(w.current.Get(context.Background(), w.interval), prev)
		w.mu.Lock()
		changed := !same(w.latest, snap)
		for s := range w.subs {
			if !changed && !s.waiting {
				continue
			}
			s.waiting = false
			send := snap
			select {
			case old := <-s.c: // replace the one this watcher has not taken yet
				send = merged(old, snap)
			default:
			}
			s.c <- send // cannot block: only this goroutine sends, under mu
		}
		w.latest = snap
		w.mu.Unlock()
	}
}

// withItems is snap, read from Current, with the watchers' part: the items
// changed since the last read and the next sale's start. Those reads are
// the watcher's alone, once per interval however many watch. When they
// fail the snapshot goes out without them, and the next read's Items tell
// against the last counts read.
func (w *Watcher) withItems(snap, prev *Snapshot) *Snapshot {
	if snap.Err != nil {
		return snap
	}
	out := *snap // Current's snapshot is shared with its other users
	ctx := context.Background()
	id := snap.Summary.ID
	next, ok, err := w.current.sales.NextSaleStart(ctx, snap.Summary.EndsAt)
	switch {
	case err == nil && ok:
		out.NextSaleStart = next
	case err != nil && prev != nil && prev.Err == nil && prev.Summary.ID == id:
		out.NextSaleStart = prev.NextSaleStart // the last known
	}
	began := time.Now()
	w.itemReads.Add(1)
	counts, err := w.current.sales.ItemCounts(ctx, id)
	if err != nil {
		return &out
	}
	fresh := make(map[int32]sale.ItemCount, len(counts))
	for _, c := range counts {
		fresh[c.ItemID] = c
	}
	if w.countsOf == id {
		out.Items, out.ItemsReadAt = changedItems(w.counts, fresh), began
	}
	// The sale's counts may come from a read another user of Current made
	// up to an interval before this one: the items may be ahead of them
	// until the next snapshot. Reading the sale again would cost a second
	// read per interval.
	w.counts, w.countsOf = fresh, id
	return &out
}

// changedItems lists the items whose counts differ between old and fresh,
// with their counts in fresh (an item missing there has none), in item
// order.
func changedItems(old, fresh map[int32]sale.ItemCount) []sale.ItemCount {
	var out []sale.ItemCount
	for id, c := range fresh {
		if old[id] != c {
			out = append(out, c)
		}
	}
	for id := range old {
		if _, ok := fresh[id]; !ok {
			out = append(out, sale.ItemCount{ItemID: id})
		}
	}
	slices.SortFunc(out, func(a, b sale.ItemCount) int { return cmp.Compare(a.ItemID, b.ItemID) })
	return out
}

// merged is the snapshot for a watcher that has not taken old when next
// comes: next, with the item changes of old that next does not repeat, so
// that a skipped snapshot loses no change.
func merged(old, next *Snapshot) *Snapshot {
	if len(old.Items) == 0 || old.Err != nil || next.Err != nil || old.Summary.ID != next.Summary.ID {
		return next
	}
	out := *next
	if out.ItemsReadAt.IsZero() { // next's read of the items failed
		out.ItemsReadAt = old.ItemsReadAt
	}
	out.Items = make([]sale.ItemCount, 0, len(old.Items)+len(next.Items))
	i, j := 0, 0
	for i < len(old.Items) || j < len(next.Items) {
		switch {
		case j == len(next.Items) || (i < len(old.Items) && old.Items[i].ItemID < next.Items[j].ItemID):
			out.Items = append(out.Items, old.Items[i])
			i++
		case i == len(old.Items) || next.Items[j].ItemID < old.Items[i].ItemID:
			out.Items = append(out.Items, next.Items[j])
			j++
		default: // the same item: the newer counts
			out.Items = append(out.Items, next.Items[j])
			i, j = i+1, j+1
		}
	}
	return &out
}

// same reports whether b shows watchers nothing new after a. A sale's
// window and settings never change, so its id, counts, changed items and
// next sale are enough.
func same(a, b *Snapshot) bool {
	if a == nil || (a.Err == nil) != (b.Err == nil) {
		return false
	}
	if a.Err != nil {
		return a.Err.Error() == b.Err.Error()
	}
	x, y := a.Summary, b.Summary
	return x.ID == y.ID && x.UnitsSold == y.UnitsSold && x.UnitsHeld == y.UnitsHeld &&
		x.UnitsAvailable == y.UnitsAvailable && x.Buyers == y.Buyers && x.MaxUnitsPerUser == y.MaxUnitsPerUser &&
		len(b.Items) == 0 && a.NextSaleStart.Equal(b.NextSaleStart)
}
