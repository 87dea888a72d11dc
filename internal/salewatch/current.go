package salewatch

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/readshare"
	"github.com/flashsale/flashsale/internal/sale"
)

// Current is the process's one read of the current sale and its counts:
// GET /sales/current, the item pages, the event streams and the metrics
// gauges all ask it, each saying how old an answer it accepts, so that
// together they cost the database one read per the shortest of those ages.
// Make one per process (cmd/server) and hand it to each.
type Current struct {
	sales  *sale.Service
	latest *readshare.Latest[*Snapshot]
	errors atomic.Int64
}

// NewCurrent reads through sales.
func NewCurrent(sales *sale.Service) *Current {
	c := &Current{sales: sales}
	c.latest = readshare.NewLatest(c.read)
	return c
}

// Get returns a snapshot whose read began less than maxAge ago, or with 0
// a new read. A snapshot without error may be shared: do not modify it.
func (c *Current) Get(ctx context.Context, maxAge time.Duration) *Snapshot {
	snap, began, err := c.latest.Get(ctx, maxAge)
	if snap == nil { // the caller's context ended before the read did
		return &Snapshot{Err: err, ReadAt: began}
	}
	return snap
}

// SaleID is the current sale's id from a read that began less than maxAge
// ago, and when that read began. With 0 it asks for the id alone, so a
// caller that needs no counts does not pay for them.
func (c *Current) SaleID(ctx context.Context, maxAge time.Duration) (int64, time.Time, error) {
	if maxAge <= 0 {
		began := time.Now()
		cur, err := c.sales.Current(ctx)
		return cur.ID, began, err
	}
	snap := c.Get(ctx, maxAge)
	return snap.Summary.ID, snap.ReadAt, snap.Err
}

// Reads is how many times the sale and its counts were read from the
// database (each read is the queries of GET /sales/current).
func (c *Current) Reads() int64 { return c.latest.Reads() }

// ReadErrors is how many of Reads failed for another reason than no open
// sale or a caller that went away.
func (c *Current) ReadErrors() int64 { return c.errors.Load() }

func (c *Current) read(ctx context.Context) (*Snapshot, error) {
	snap := &Snapshot{ReadAt: time.Now()}
	cur, err := c.sales.Current(ctx)
	if err == nil {
		snap.Summary, err = c.sales.Summary(ctx, cur.ID)
	}
	if err != nil && !errors.Is(err, sale.ErrNoActiveSale) && !errors.Is(err, context.Canceled) {
		c.errors.Add(1)
	}
	snap.Err = err
	return snap, err
}
