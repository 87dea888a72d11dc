// Package phase runs the benchmark's load: a herd that sells a sale out,
// a storm of checkouts against the sold-out sale, and readers beside a
// storm. Each returns what its clients saw; reports are made above.
package phase

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/driver"
	"github.com/flashsale/flashsale/internal/loadgen/stats"
)

// Item choice in the herd.
const (
	// PickRandom: every checkout names an item drawn uniformly from all of
	// them, so near sell-out the herd pays a coupon-collector tail of
	// item_unavailable answers (about items × ln(items) checkouts in all).
	// The default: the most the sale can be asked for its units, by
	// clients that know nothing of what is left, with no model of a
	// storefront to reproduce.
	PickRandom = "random"
	// PickUntaken: clients share what they learnt; an item answered
	// item_unavailable is not drawn again (like a storefront that greys out
	// taken items, or shoppers picking from the list of items with free
	// units). An extra data point (-pick untaken).
	PickUntaken = "untaken"
)

// HerdSpec is what a herd needs to know.
type HerdSpec struct {
	Users       []string
	Concurrency int
	Items       int   // items are 1..Items
	Want        int64 // purchases that sell the sale out
	Pick        string
	Timeout     time.Duration
}

// purchaseTries bounds the retries of a purchase that got no definite
// answer: a repeated purchase of the same code is idempotent.
const purchaseTries = 5

// Herd sends spec.Users, spec.Concurrency at a time, to check out and buy
// until the sale is sold out, the users run out or spec.Timeout passes.
func Herd(ctx context.Context, d driver.Driver, spec HerdSpec) *Run {
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()

	var (
		nextUser atomic.Int64
		sold     atomic.Int64
		wallNS   atomic.Int64
		taken    = make([]atomic.Bool, spec.Items+1)
		wg       sync.WaitGroup
	)
	type result struct {
		checkout, purchase *stats.Endpoint
		ids                []int64
	}
	results := make([]result, spec.Concurrency)
	start := time.Now()
	for i := range spec.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := d.NewWorker()
			defer w.Close()
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)))
			co, pu := stats.NewEndpoint(), stats.NewEndpoint()
			var ids []int64
			defer func() { results[i] = result{co, pu, ids} }()
			pick := func() int64 {
				if spec.Pick != PickUntaken {
					return 1 + rng.Int64N(int64(spec.Items))
				}
				for range 64 {
					it := 1 + rng.IntN(spec.Items)
					if !taken[it].Load() {
						return int64(it)
					}
				}
				off := rng.IntN(spec.Items)
				for j := range spec.Items {
					it := 1 + (off+j)%spec.Items
					if !taken[it].Load() {
						return int64(it)
					}
				}
				return 1 + rng.Int64N(int64(spec.Items))
			}
			for {
				u := nextUser.Add(1) - 1
				if u >= int64(len(spec.Users)) {
					return
				}
				user := spec.Users[u]
			sameUser:
				for {
					if ctx.Err() != nil {
						return
					}
					item := pick()
					t0 := time.Now()
					r := w.Checkout(ctx, user, item)
					co.Record(time.Since(t0), r)
					switch {
					case r.Err != nil:
						if ctx.Err() != nil {
							return
						}
						time.Sleep(time.Millisecond) // do not spin on a dead server
					case r.Outcome == driver.Held && r.Code != "":
						for range purchaseTries {
							t0 := time.Now()
							p := w.Purchase(ctx, r.Code)
							pu.Record(time.Since(t0), p)
							if p.Outcome == driver.Purchased {
								ids = append(ids, p.PurchaseID)
								if sold.Add(1) == spec.Want {
									wallNS.Store(int64(time.Since(start)))
								}
								break
							}
							if p.Err == nil && p.Status < 500 {
								break // a definite answer: code_expired, code_not_found
							}
							if ctx.Err() != nil {
								return
							}
							time.Sleep(time.Millisecond)
						}
					case r.Outcome == driver.SoldOut:
						return // nothing is left for anyone
					case r.Outcome == driver.UserLimit, r.Outcome == driver.RateLimited:
						// At the cap, or told to slow down: this shopper
						// leaves, the next one comes.
						break sameUser
					case r.Outcome == driver.Unavailable:
						taken[item].Store(true)
					default:
						// 5xx, no_active_sale, ...: counted; try again.
						time.Sleep(time.Millisecond)
					}
				}
			}
		}()
	}
	wg.Wait()
	run := &Run{
		Checkout: stats.NewEndpoint(), Purchase: stats.NewEndpoint(),
		Elapsed: time.Since(start), Wall: time.Duration(wallNS.Load()),
		Purchases: sold.Load(), UsersUsed: min(nextUser.Load(), int64(len(spec.Users))),
		TimedOut: ctx.Err() != nil,
	}
	var ids []int64
	for _, r := range results {
		run.Checkout.Merge(r.checkout)
		run.Purchase.Merge(r.purchase)
		ids = append(ids, r.ids...)
	}
	slices.Sort(ids)
	run.DistinctIDs = int64(len(slices.Compact(ids)))
	return run
}
