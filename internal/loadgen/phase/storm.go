package phase

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/driver"
	"github.com/flashsale/flashsale/internal/loadgen/stats"
)

// StormSpec is what a storm needs to know.
type StormSpec struct {
	Users       []string
	Concurrency int
	Items       int
	Duration    time.Duration
	// HotClients more clients send checkouts as one user (HotUser) all
	// along, beside the others; Run.Others counts the others' checkouts.
	HotClients int
}

// HotUser is the one user behind a storm's hot share.
const HotUser = "hot-user"

// Storm sends checkouts by random users for spec.Duration. Requests in
// flight when the time is up are waited for, never cancelled, so every
// request sent is answered and can be matched with checkout_attempts.
func Storm(ctx context.Context, d driver.Driver, spec StormSpec) *Run {
	var wg sync.WaitGroup
	results := make([]*stats.Endpoint, spec.Concurrency+spec.HotClients)
	seconds := make([][]int64, spec.Concurrency+spec.HotClients)
	start := time.Now()
	end := start.Add(spec.Duration)
	for i := range spec.Concurrency + spec.HotClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := d.NewWorker()
			defer w.Close()
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)+1<<32))
			co := stats.NewEndpoint()
			perSecond := make([]int64, 0, int(spec.Duration/time.Second)+2)
			defer func() { results[i], seconds[i] = co, perSecond }()
			hot := i >= spec.Concurrency
			for ctx.Err() == nil && time.Now().Before(end) {
				user := HotUser
				if !hot {
					user = spec.Users[rng.IntN(len(spec.Users))]
				}
				item := 1 + rng.Int64N(int64(spec.Items))
				t0 := time.Now()
				r := w.Checkout(context.WithoutCancel(ctx), user, item)
				now := time.Now()
				co.Record(now.Sub(t0), r)
				perSecond = addAt(perSecond, int(now.Sub(start)/time.Second), 1)
				if r.Err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	run := &Run{Checkout: stats.NewEndpoint(), Purchase: stats.NewEndpoint(), Elapsed: time.Since(start)}
	if spec.HotClients > 0 {
		run.Others = stats.NewEndpoint()
	}
	for i, r := range results {
		run.Checkout.Merge(r)
		if run.Others != nil && i < spec.Concurrency {
			run.Others.Merge(r)
		}
		for sec, n := range seconds[i] {
			run.PerSecond = addAt(run.PerSecond, sec, n)
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
