package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/deploy"
	"github.com/flashsale/flashsale/internal/loadgen/driver"
	"github.com/flashsale/flashsale/internal/loadgen/invariant"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
	"github.com/flashsale/flashsale/internal/loadgen/report"
	"github.com/flashsale/flashsale/internal/loadgen/usage"
	"github.com/flashsale/flashsale/internal/process"
)

// CeilingConfig says how to start the HTTP ceiling: cmd/httpceiling, the
// server's Echo stack answering every checkout 409 sold_out without a
// database.
type CeilingConfig struct {
	Bin string
	// Processes: as many as the service has servers, so both spread the
	// same clients over the same number of processes.
	Processes    int
	ExtraEnv     []string // the servers' extra environment, which it reads the same way
	LogDir       string
	ReadyTimeout time.Duration
	Items        int // item ids the storm names
}

// RunHTTPCeiling starts cfg.Processes HTTP ceilings, storms them as the
// service's storm is run (same driver, clients and duration) and stops them.
func RunHTTPCeiling(ctx context.Context, opts Options, cfg CeilingConfig) (_ *report.CeilingRun, err error) {
	opts.setDefaults()
	var procs []*process.Process
	defer func() {
		for _, p := range procs {
			err = errors.Join(err, p.Stop())
		}
	}()
	for i := range max(cfg.Processes, 1) {
		p, err := process.Start(cfg.Bin, cfg.ExtraEnv, deploy.LogPath(cfg.LogDir, "httpceiling", "storm", i+1))
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		fmt.Fprintf(opts.Log, "loadgen: started %s (pid %d) on %s\n", cfg.Bin, p.PID(), p.URL)
	}
	var urls []string
	var pids []int
	for _, p := range procs {
		if err := p.WaitReady(ctx, cfg.ReadyTimeout); err != nil {
			return nil, err
		}
		urls, pids = append(urls, p.URL), append(pids, p.PID())
	}
	d, err := driver.NewHTTP(urls, opts.RequestTimeout)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "loadgen: HTTP ceiling storm: %d clients for %s\n", opts.StormConcurrency, opts.StormDuration)
	cpu := usage.StartCPU(pids, "", false)
	st := phase.Storm(ctx, d, phase.StormSpec{
		Users: phase.Users(opts.Users), Concurrency: opts.StormConcurrency, Items: max(cfg.Items, 1), Duration: opts.StormDuration,
	})
	r := &report.CeilingRun{Processes: len(procs), Storm: report.Phase(st, opts.StormConcurrency, cpu.Stop(st.Elapsed))}
	r.Storm.Purchase = nil
	r.Storm.Checkout.Stored = 0 // nothing is stored: no database
	r.Storm.Timeline = report.NewTimeline(st)
	fmt.Fprintf(opts.Log, "loadgen: HTTP ceiling storm: %d checkouts in %.2fs\n", st.Checkout.Hist.Count(), st.Elapsed.Seconds())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// 429 is what a sold-out server answers too, to a user over the rate
	// limit: the same middleware and error handler, a body of the same size.
	co := r.Storm.Checkout
	soldOut, limited := co.Outcomes["409 "+driver.SoldOut], co.Outcomes["429 "+driver.RateLimited]
	r.Checks = []invariant.Check{{
		Name: "every checkout answered 409 sold_out (or 429 rate_limited)",
		Pass: co.Requests > 0 && soldOut+limited == co.Requests && co.TransportErrors == 0,
		Detail: fmt.Sprintf("%d of %d answers 409 sold_out, %d 429 rate_limited, %d transport errors",
			soldOut, co.Requests, limited, co.TransportErrors),
	}}
	if r.Server, err = usage.ServerOf(pids); err != nil {
		return nil, err
	}
	return r, nil
}
