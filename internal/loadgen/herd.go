package loadgen

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Item choice in the herd.
const (
	// PickRandom: every checkout names an item drawn uniformly from all of
	// them. Near sell-out most draws name an item already taken, so the
	// herd pays a coupon-collector tail of item_unavailable answers (about
	// items × ln(items) checkouts in all: ~90k for 10,000 single-unit
	// items). It is the default and what `make bench` reports for both
	// configurations: it is the most the sale can be asked for the same
	// 10,000 units (clients that know nothing of what is left), it needs no
	// model of a storefront to be reproduced, and the target for
	// the default configuration is stated for it.
	PickRandom = "random"
	// PickUntaken: clients share what they learnt; an item answered
	// item_unavailable is not drawn again (like a storefront that greys out
	// taken items, or shoppers picking from the list of items with free
	// units). An extra data point (-pick untaken).
	PickUntaken = "untaken"
)

// herdSpec is what a herd needs to know.
type herdSpec struct {
	users       []string
	concurrency int
	items       int   // items are 1..items
	want        int64 // purchases that sell the sale out
	pick        string
	timeout     time.Duration
}

// phaseRun is what a herd or a storm measured.
type phaseRun struct {
	checkout *endpointStats
	purchase *endpointStats
	// elapsed runs from the first request to the last answer.
	elapsed time.Duration
	// wall runs from the first request to the want-th purchase; 0 when
	// that purchase never came.
	wall        time.Duration
	purchases   int64
	distinctIDs int64 // distinct purchase ids answered
	usersUsed   int64
	timedOut    bool
	// others: storm checkouts of every user but the hot one (nil without).
	others *endpointStats
	// perSecond: storm only, answers counted by the second (since the
	// first request) in which they arrived.
	perSecond []int64
}

// purchaseTries bounds the retries of a purchase that got no definite
// answer: a repeated purchase of the same code is idempotent.
const purchaseTries = 5

func runHerd(ctx context.Context, d Driver, spec herdSpec) *phaseRun {
	ctx, cancel := context.WithTimeout(ctx, spec.timeout)
	defer cancel()

	var (
		nextUser atomic.Int64
		sold     atomic.Int64
		wallNS   atomic.Int64
		taken    = make([]atomic.Bool, spec.items+1)
		wg       sync.WaitGroup
	)
	type result struct {
		checkout, purchase *endpointStats
		ids                []int64
	}
	results := make([]result, spec.concurrency)
	start := time.Now()
	for i := range spec.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := d.NewWorker()
			defer w.Close()
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)))
			co, pu := newEndpointStats(), newEndpointStats()
			var ids []int64
			defer func() { results[i] = result{co, pu, ids} }()
			pick := func() int64 {
				if spec.pick != PickUntaken {
					return 1 + rng.Int64N(int64(spec.items))
				}
				for range 64 {
					it := 1 + rng.IntN(spec.items)
					if !taken[it].Load() {
						return int64(it)
					}
				}
				off := rng.IntN(spec.items)
				for j := range spec.items {
					it := 1 + (off+j)%spec.items
					if !taken[it].Load() {
						return int64(it)
					}
				}
				return 1 + rng.Int64N(int64(spec.items))
			}
			for {
				u := nextUser.Add(1) - 1
				if u >= int64(len(spec.users)) {
					return
				}
				user := spec.users[u]
			sameUser:
				for {
					if ctx.Err() != nil {
						return
					}
					item := pick()
					t0 := time.Now()
					r := w.Checkout(ctx, user, item)
					co.record(time.Since(t0), r)
					switch {
					case r.Err != nil:
						if ctx.Err() != nil {
							return
						}
						time.Sleep(time.Millisecond) // do not spin on a dead server
					case r.Outcome == outHeld && r.Code != "":
						for range purchaseTries {
							t0 := time.Now()
							p := w.Purchase(ctx, r.Code)
							pu.record(time.Since(t0), p)
							if p.Outcome == outPurchased {
								ids = append(ids, p.PurchaseID)
								if sold.Add(1) == spec.want {
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
					case r.Outcome == outSoldOut:
						return // nothing is left for anyone
					case r.Outcome == outUserLimit, r.Outcome == outRateLimited:
						// At the cap, or told to slow down: this shopper
						// leaves, the next one comes.
						break sameUser
					case r.Outcome == outUnavailable:
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
	run := &phaseRun{
		checkout: newEndpointStats(), purchase: newEndpointStats(),
		elapsed: time.Since(start), wall: time.Duration(wallNS.Load()),
		purchases: sold.Load(), usersUsed: min(nextUser.Load(), int64(len(spec.users))),
		timedOut: ctx.Err() != nil,
	}
	var ids []int64
	for _, r := range results {
		run.checkout.merge(r.checkout)
		run.purchase.merge(r.purchase)
		ids = append(ids, r.ids...)
	}
	slices.Sort(ids)
	run.distinctIDs = int64(len(slices.Compact(ids)))
	return run
}

// stormSpec is what a storm needs to know.
type stormSpec struct {
	users       []string
	concurrency int
	items       int
	duration    time.Duration
	// hotClients more clients send checkouts as one user (hotUser) all
	// along, beside the others; run.others counts the others' checkouts.
	hotClients int
}

// hotUser is the one user behind a storm's hot share.
const hotUser = "hot-user"

// runStorm sends checkouts by random users for spec.duration. Requests in
// flight when the time is up are waited for, never cancelled, so every
// request sent is answered and can be matched with checkout_attempts.
func runStorm(ctx context.Context, d Driver, spec stormSpec) *phaseRun {
	var wg sync.WaitGroup
	results := make([]*endpointStats, spec.concurrency+spec.hotClients)
	seconds := make([][]int64, spec.concurrency+spec.hotClients)
	start := time.Now()
	end := start.Add(spec.duration)
	for i := range spec.concurrency + spec.hotClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := d.NewWorker()
			defer w.Close()
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)+1<<32))
			co := newEndpointStats()
			perSecond := make([]int64, 0, int(spec.duration/time.Second)+2)
			defer func() { results[i], seconds[i] = co, perSecond }()
			hot := i >= spec.concurrency
			for ctx.Err() == nil && time.Now().Before(end) {
				user := hotUser
				if !hot {
					user = spec.users[rng.IntN(len(spec.users))]
				}
				item := 1 + rng.Int64N(int64(spec.items))
				t0 := time.Now()
				r := w.Checkout(context.WithoutCancel(ctx), user, item)
				now := time.Now()
				co.record(now.Sub(t0), r)
				perSecond = addAt(perSecond, int(now.Sub(start)/time.Second), 1)
				if r.Err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	run := &phaseRun{checkout: newEndpointStats(), purchase: newEndpointStats(), elapsed: time.Since(start)}
	if spec.hotClients > 0 {
		run.others = newEndpointStats()
	}
	for i, r := range results {
		run.checkout.merge(r)
		if run.others != nil && i < spec.concurrency {
			run.others.merge(r)
		}
		for sec, n := range seconds[i] {
			run.perSecond = addAt(run.perSecond, sec, n)
		}
	}
	return run
}

// addAt adds n to s[i], growing s as needed.
func addAt(s []int64, i int, n int64) []int64 {
	for len(s) <= i {
		s = append(s, 0)
	}
	s[i] += n
	return s
}
