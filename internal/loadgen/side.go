package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/loadgen/deploy"
	"github.com/flashsale/flashsale/internal/loadgen/driver"
	"github.com/flashsale/flashsale/internal/loadgen/invariant"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
	"github.com/flashsale/flashsale/internal/loadgen/report"
	"github.com/flashsale/flashsale/internal/loadgen/usage"
	"github.com/flashsale/flashsale/internal/loadgen/webhook"
	"github.com/flashsale/flashsale/internal/sale"
)

// Target is a running service: one server or several on one database.
type Target struct {
	URLs  []string // base URLs of the HTTP API, one per server
	DBURL string   // its database (direct), for the SQL checks
	PIDs  []int    // its processes, for RSS and CPU; empty when unknown
	// Webhooks receives the servers' webhooks; nil when they send none.
	// After the phases, the run waits (opts.WebhookWait at most) for an
	// event of every purchase and checks them.
	Webhooks *webhook.Receiver
}

// RunService runs herd, storm, the reads phase (opts.Reads) and the
// invariant checks against a service.
func RunService(ctx context.Context, opts Options, t Target) (*report.SideResult, error) {
	opts.setDefaults()
	pool, err := database.Open(ctx, t.DBURL, 4, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	d, err := driver.NewHTTP(t.URLs, opts.RequestTimeout)
	if err != nil {
		return nil, err
	}
	// Only to read the current sale as the servers see it.
	sales := sale.NewService(pool, sale.Settings{}, 10*time.Second, discardLog)
	defer sales.Close()
	res, err := runSide(ctx, opts, side{name: "service", driver: d, pool: pool, sales: sales, pids: t.PIDs, urls: t.URLs,
		webhooks: t.Webhooks})
	if err != nil {
		return nil, err
	}
	if len(t.PIDs) > 0 {
		if res.Server, err = usage.ServerOf(t.PIDs); err != nil {
			return nil, err
		}
	}
	return res, nil
}

var discardLog = slog.New(slog.DiscardHandler)

// RunBaseline creates a fresh database (opts.NewBaselineDB), migrates it,
// creates a sale like ref, and runs herd and storm with the SQL driver: the
// database ceiling. Like the server, it opens its pool's connections as
// they are needed and plans with the statistics the sale's creation left.
func RunBaseline(ctx context.Context, opts Options, ref report.SaleInfo) (_ *report.SideResult, err error) {
	opts.setDefaults()
	if opts.NewBaselineDB == nil {
		return nil, errors.New("baseline: no way to create its database")
	}
	url, drop, err := opts.NewBaselineDB(ctx)
	if err != nil {
		return nil, fmt.Errorf("baseline database: %w", err)
	}
	defer func() {
		if drop != nil {
			err = errors.Join(err, drop(context.WithoutCancel(ctx)))
		}
	}()
	pool, err := database.Open(ctx, url, int32(opts.BaselineConns), 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := database.Migrate(ctx, pool); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	settings := sale.Settings{
		Duration: deploy.SafeSaleDuration(time.Now(), 10*time.Minute), Units: int(ref.Units), Items: int(ref.Items),
		PerUserLimit: int(ref.PerUserLimit), HoldTTL: time.Duration(ref.HoldTTLS * float64(time.Second)),
	}
	// The same service the server runs, with its batching, minus HTTP.
	svc := sale.NewService(pool, settings, 30*time.Second, discardLog)
	defer svc.Close()
	if err := svc.EnsureSales(ctx, time.Now()); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	opts.Reads, opts.Pooler = false, false
	res, err := runSide(ctx, opts, side{name: "baseline", driver: driver.NewSQL(svc), pool: pool, sales: svc})
	if err != nil {
		return nil, err
	}
	res.Conns = opts.BaselineConns
	return res, nil
}

// side is what runSide drives.
type side struct {
	name   string
	driver driver.Driver
	pool   *pgxpool.Pool // the database, direct
	sales  *sale.Service // on pool, for the current sale
	pids   []int         // server processes, for CPU
	urls   []string      // servers, for the readers
	// webhooks receives the servers' webhooks; nil: none are checked.
	webhooks *webhook.Receiver
}

func mark(ctx context.Context, pool *pgxpool.Pool) (report.Mark, error) {
	n, err := invariant.CountAttempts(ctx, pool)
	return report.Mark{Attempts: n, WAL: usage.ReadWAL(ctx, pool)}, err
}

// runSide runs herd, storm and (opts.Reads, with urls) the reads phase with
// sd.driver against the current sale of sd.pool's database, and checks the
// invariants.
func runSide(ctx context.Context, opts Options, sd side) (*report.SideResult, error) {
	pool := sd.pool
	cur, err := sd.sales.Current(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: current sale: %w", sd.name, err)
	}
	state0, err := invariant.ReadSale(ctx, pool, cur.ID)
	if err != nil {
		return nil, err
	}
	info := report.SaleInfo{
		ID: cur.ID, Units: int64(cur.UnitsTotal), Items: int64(cur.Items), PerUserLimit: int64(cur.PerUserLimit),
		HoldTTLS: cur.HoldTTL.Seconds(), SoldBefore: state0.UnitsSold,
	}
	if state0.UnitsSold > 0 {
		fmt.Fprintf(opts.Log, "loadgen: %s: warning: sale %d is not fresh, %d of %d units were sold before the run\n",
			sd.name, info.ID, state0.UnitsSold, info.Units)
	}
	var dbName string
	if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&dbName); err != nil {
		return nil, fmt.Errorf("%s: database name: %w", sd.name, err)
	}
	m0, err := mark(ctx, pool)
	if err != nil {
		return nil, err
	}
	users := phase.Users(opts.Users)

	fmt.Fprintf(opts.Log, "loadgen: %s herd: sale %d, %d units over %d items, %d users, %d clients, pick %s\n",
		sd.name, info.ID, info.Units-info.SoldBefore, info.Items, len(users), opts.Concurrency, opts.Pick)
	cpu := usage.StartCPU(sd.pids, dbName, opts.Pooler)
	herd := phase.Herd(ctx, sd.driver, phase.HerdSpec{
		Users: users, Concurrency: opts.Concurrency, Items: int(info.Items),
		Want: info.Units - info.SoldBefore, Pick: opts.Pick, Timeout: opts.HerdTimeout,
	})
	herdCPU := cpu.Stop(herd.Elapsed)
	herdEnd := time.Now()
	fmt.Fprintf(opts.Log, "loadgen: %s herd: %d purchases in %.2fs (%d checkouts)\n",
		sd.name, herd.Purchases, herd.Wall.Seconds(), herd.Checkout.Hist.Count())
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	m1, err := mark(ctx, pool)
	if err != nil {
		return nil, err
	}
	storm := phase.StormSpec{Users: users, Concurrency: opts.StormConcurrency, Items: int(info.Items), Duration: opts.StormDuration,
		HotClients: opts.HotClients}
	fmt.Fprintf(opts.Log, "loadgen: %s storm: %d clients for %s\n", sd.name, opts.StormConcurrency, opts.StormDuration)
	cpu = usage.StartCPU(sd.pids, dbName, opts.Pooler)
	st := phase.Storm(ctx, sd.driver, storm)
	stormCPU := cpu.Stop(st.Elapsed)
	m2, err := mark(ctx, pool)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "loadgen: %s storm: %d checkouts in %.2fs\n", sd.name, st.Checkout.Hist.Count(), st.Elapsed.Seconds())
	sr := report.Storm(st, opts.StormConcurrency, stormCPU, m1, m2)
	storms := []invariant.Storm{{Name: "storm", Stored: m2.Attempts - m1.Attempts, Answered: st.Checkout.Stored()}}
	answered := herd.Checkout.Stored() + st.Checkout.Stored()
	mEnd := m2

	var reads *report.ReadsReport
	if opts.Reads && len(sd.urls) > 0 && opts.ReadCurrent+opts.ReadItems > 0 {
		fmt.Fprintf(opts.Log, "loadgen: %s reads: %d clients for %s beside %d on %s and %d on %s\n", sd.name,
			opts.StormConcurrency, opts.StormDuration, opts.ReadCurrent, phase.ReadCurrentPath, opts.ReadItems, phase.ReadItemsPath)
		rd := phase.StartReaders(ctx, phase.ReadSpec{URLs: sd.urls, Current: opts.ReadCurrent, Items: opts.ReadItems, Timeout: opts.RequestTimeout, Interval: opts.ReadInterval})
		cpu = usage.StartCPU(sd.pids, dbName, opts.Pooler)
		rst := phase.Storm(ctx, sd.driver, storm)
		rcpu := cpu.Stop(rst.Elapsed)
		readers, dials := rd.Finish()
		m3, err := mark(ctx, pool)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(opts.Log, "loadgen: %s reads: %d checkouts in %.2fs\n", sd.name, rst.Checkout.Hist.Count(), rst.Elapsed.Seconds())
		reads = &report.ReadsReport{Storm: report.Storm(rst, opts.StormConcurrency, rcpu, m2, m3), Readers: report.Readers(readers), ReaderConns: dials}
		reads.AlonePerSecond = sr.Checkout.PerSecond
		if sr.Timeline != nil {
			reads.AlonePerSecond = sr.Timeline.RestPerSecond
		}
		reads.WithPerSecond = reads.Storm.Checkout.PerSecond
		if reads.AlonePerSecond > 0 {
			reads.Ratio = reads.WithPerSecond / reads.AlonePerSecond
		}
		storms = append(storms, invariant.Storm{Name: "storm beside readers", Stored: m3.Attempts - m2.Attempts, Answered: rst.Checkout.Stored()})
		answered += rst.Checkout.Stored()
		mEnd = m3
	}

	state, err := invariant.ReadSale(ctx, pool, info.ID)
	if err != nil {
		return nil, err
	}
	checks := invariant.Checks(state, invariant.Seen{
		SoldBefore: info.SoldBefore, Herd: herd,
		AttemptsStored: mEnd.Attempts - m0.Attempts, AttemptsAnswer: answered,
		Storms: storms,
	})
	res := &report.SideResult{Sale: info, Herd: report.Herd(herd, opts.Concurrency, herdCPU, m0, m1), Storm: sr, Reads: reads}
	if sd.webhooks != nil {
		// After the storms rather than right after the herd: they ran
		// with the deliveries in flight, as a shop's sale would.
		wh, err := awaitWebhooks(ctx, opts, sd, info.ID, herdEnd)
		if err != nil {
			return nil, err
		}
		res.Webhooks = wh
		checks = append(checks, invariant.WebhookCheck(wh.Deliveries))
	}
	res.Invariants = checks
	return res, nil
}
