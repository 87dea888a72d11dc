// Package loadgen benchmarks the flash-sale service through its HTTP API:
// a herd that sells a fresh sale out, a storm of checkouts against the sold
// out sale, the same two driven straight at PostgreSQL as a baseline, the
// invariants that must hold afterwards, and a report (table and JSON).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/db"
	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/sale"
)

// Options shape the load; the zero value of each field takes its default.
type Options struct {
	Users            int           // herd users (default 20,000)
	Concurrency      int           // herd clients (default 256)
	StormConcurrency int           // storm clients (default 128)
	StormDuration    time.Duration // default 20s
	HerdTimeout      time.Duration // the herd gives up after this (default 3m)
	RequestTimeout   time.Duration // per HTTP request (default 30s)
	Pick             string        // PickRandom (default) or PickUntaken
	// HotClients more storm clients send checkouts as one user.
	HotClients int

	// Baseline runs herd and storm straight at PostgreSQL as well.
	Baseline bool
	// BaselineConns sizes the baseline's pgxpool (default 4, the
	// server's DB_MAX_CONNS default).
	BaselineConns int
	// NewBaselineDB returns a fresh, empty database for the baseline and a
	// function that drops it.
	NewBaselineDB func(ctx context.Context) (url string, drop func(context.Context) error, err error)

	// Checkpoint issues CHECKPOINT before each phase, so that every phase
	// starts alike: right after a checkpoint, paying the same full-page
	// images, instead of whichever phase a timed checkpoint lands in.
	// Needs a superuser (or pg_checkpoint); a refusal only warns.
	Checkpoint bool
	// Analyze runs ANALYZE before each phase, so that both sides plan with
	// the same statistics instead of whatever autovacuum got round to: the
	// plans of the checkout queries change once the tables are analyzed.
	Analyze bool

	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (o *Options) setDefaults() {
	if o.Users <= 0 {
		o.Users = 20000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.StormConcurrency <= 0 {
		o.StormConcurrency = 128
	}
	if o.StormDuration <= 0 {
		o.StormDuration = 20 * time.Second
	}
	if o.HerdTimeout <= 0 {
		o.HerdTimeout = 3 * time.Minute
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Pick == "" {
		o.Pick = PickRandom
	}
	if o.BaselineConns <= 0 {
		o.BaselineConns = 4
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Target is a running service.
type Target struct {
	URL   string // base URL of the HTTP API
	DBURL string // its database, for the SQL checks
	PID   int    // its process, for RSS and CPU; 0 when unknown
}

// SaleInfo is the sale a run used.
type SaleInfo struct {
	ID           int64   `json:"id"`
	Units        int64   `json:"units"`
	Items        int64   `json:"items"`
	PerUserLimit int64   `json:"per_user_limit"`
	HoldTTLS     float64 `json:"hold_ttl_s"`
	SoldBefore   int64   `json:"sold_before"`
}

// SideResult is what one side (the service, or the baseline) measured.
type SideResult struct {
	Sale       SaleInfo    `json:"sale"`
	Herd       PhaseReport `json:"herd"`
	Storm      PhaseReport `json:"storm"`
	Invariants []Check     `json:"invariants"`
	// Server is the service's process, when its pid is known.
	Server *ServerUsage `json:"server,omitempty"`
	// Conns is the baseline's pool size.
	Conns int `json:"db_conns,omitempty"`
}

// ServerUsage is the service process's resources.
type ServerUsage struct {
	PID          int     `json:"pid"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	CPUTotalS    float64 `json:"cpu_total_s"` // since the process started
}

// RunService runs herd, storm and the invariant checks against a service.
func RunService(ctx context.Context, opts Options, t Target) (*SideResult, error) {
	opts.setDefaults()
	pool, err := database.Open(ctx, t.DBURL, 4, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	driver, err := NewHTTPDriver(t.URL, opts.RequestTimeout)
	if err != nil {
		return nil, err
	}
	res, err := runSide(ctx, opts, driver, pool, t.PID, "service")
	if err != nil {
		return nil, err
	}
	if t.PID > 0 {
		u := &ServerUsage{PID: t.PID}
		if u.PeakRSSBytes, err = ProcPeakRSS(t.PID); err != nil {
			return nil, fmt.Errorf("server peak RSS: %w", err)
		}
		cpu, err := ProcCPU(t.PID)
		if err != nil {
			return nil, fmt.Errorf("server CPU: %w", err)
		}
		u.CPUTotalS = cpu.Seconds()
		res.Server = u
	}
	return res, nil
}

// RunBaseline creates a fresh database (opts.NewBaselineDB), migrates it,
// creates a sale like ref, and runs herd and storm with the SQL driver.
func RunBaseline(ctx context.Context, opts Options, ref SaleInfo) (_ *SideResult, err error) {
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
		Duration: SafeSaleDuration(time.Now(), 10*time.Minute), Units: int(ref.Units), Items: int(ref.Items),
		PerUserLimit: int(ref.PerUserLimit), HoldTTL: time.Duration(ref.HoldTTLS * float64(time.Second)),
	}
	// The same service the server runs, with its batching, minus HTTP.
	svc := sale.NewService(pool, settings, 30*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer svc.Close()
	if err := svc.EnsureSales(ctx, time.Now()); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	// Open every connection first: the server's pool is warm too.
	var wg sync.WaitGroup
	conns := make([]*pgxpool.Conn, opts.BaselineConns)
	for i := range conns {
		wg.Go(func() { conns[i], _ = pool.Acquire(ctx) })
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			c.Release()
		}
	}
	res, err := runSide(ctx, opts, NewSQLDriver(svc), pool, 0, "baseline")
	if err != nil {
		return nil, err
	}
	res.Conns = opts.BaselineConns
	return res, nil
}

// runSide runs herd then storm with d against the current sale of pool's
// database and checks the invariants.
func runSide(ctx context.Context, opts Options, d Driver, pool *pgxpool.Pool, pid int, side string) (*SideResult, error) {
	row, err := db.New().SaleGetCurrent(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("%s: current sale: %w", side, err)
	}
	state0, err := readSaleState(ctx, pool, row.ID)
	if err != nil {
		return nil, err
	}
	info := SaleInfo{
		ID: row.ID, Units: int64(row.UnitsTotal), Items: int64(row.Items), PerUserLimit: int64(row.PerUserLimit),
		HoldTTLS: (time.Duration(row.HoldTtl.Microseconds) * time.Microsecond).Seconds(), SoldBefore: state0.unitsSold,
	}
	if state0.unitsSold > 0 {
		fmt.Fprintf(opts.Log, "loadgen: %s: warning: sale %d is not fresh, %d of %d units were sold before the run\n",
			side, info.ID, state0.unitsSold, info.Units)
	}
	attempts0, err := countAttempts(ctx, pool)
	if err != nil {
		return nil, err
	}
	users := makeUsers(opts.Users)

	fmt.Fprintf(opts.Log, "loadgen: %s herd: sale %d, %d units over %d items, %d users, %d clients\n",
		side, info.ID, info.Units-info.SoldBefore, info.Items, len(users), opts.Concurrency)
	checkpoint(ctx, opts, pool, side)
	wal0 := readWAL(ctx, pool)
	m := startCPU(pid)
	herd := runHerd(ctx, d, herdSpec{
		users: users, concurrency: opts.Concurrency, items: int(info.Items),
		want: info.Units - info.SoldBefore, pick: opts.Pick, timeout: opts.HerdTimeout,
	})
	herdCPU := m.stop(herd.elapsed)
	fmt.Fprintf(opts.Log, "loadgen: %s herd: %d purchases in %.2fs (%d checkouts)\n",
		side, herd.purchases, herd.wall.Seconds(), herd.checkout.hist.Count())
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	wal1 := readWAL(ctx, pool)
	attempts1, err := countAttempts(ctx, pool)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "loadgen: %s storm: %d clients for %s\n", side, opts.StormConcurrency, opts.StormDuration)
	checkpoint(ctx, opts, pool, side)
	walStorm := readWAL(ctx, pool)
	m = startCPU(pid)
	storm := runStorm(ctx, d, stormSpec{
		users: users, concurrency: opts.StormConcurrency, items: int(info.Items), duration: opts.StormDuration,
		hotClients: opts.HotClients,
	})
	stormCPU := m.stop(storm.elapsed)
	wal2 := readWAL(ctx, pool)
	attempts2, err := countAttempts(ctx, pool)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "loadgen: %s storm: %d checkouts in %.2fs\n", side, storm.checkout.hist.Count(), storm.elapsed.Seconds())

	state, err := readSaleState(ctx, pool, info.ID)
	if err != nil {
		return nil, err
	}
	checks := checkInvariants(state, invariantInput{
		soldBefore:     info.SoldBefore,
		herd:           herd,
		attemptsStored: attempts2 - attempts0,
		attemptsAnswer: herd.checkout.stored() + storm.checkout.stored(),
		stormStored:    attempts2 - attempts1, stormAnswered: storm.checkout.stored(), stormConsidered: true,
	})
	hr := phaseReport(herd, opts.Concurrency, herdCPU)
	sr := phaseReport(storm, opts.StormConcurrency, stormCPU)
	sr.Purchase = nil
	hr.WAL = walDelta(wal0, wal1, hr.Checkout.Requests+hr.Purchase.Requests)
	sr.WAL = walDelta(walStorm, wal2, sr.Checkout.Requests)
	sr.AttemptsBefore, sr.AttemptsAfter = &attempts1, &attempts2
	return &SideResult{Sale: info, Herd: hr, Storm: sr, Invariants: checks}, nil
}

// checkpoint prepares a phase: ANALYZE, then CHECKPOINT (after it, so the
// phase does not pay for ANALYZE's writes), as opts ask.
func checkpoint(ctx context.Context, opts Options, pool *pgxpool.Pool, side string) {
	if opts.Analyze {
		if _, err := pool.Exec(ctx, "ANALYZE units, purchases, checkout_attempts, sales, items"); err != nil {
			fmt.Fprintf(opts.Log, "loadgen: %s: warning: ANALYZE: %v\n", side, err)
		}
	}
	if opts.Checkpoint {
		if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
			fmt.Fprintf(opts.Log, "loadgen: %s: warning: CHECKPOINT: %v\n", side, err)
		}
	}
}

// makeUsers names n users; the prefix differs per run, so a run against a
// sale that earlier runs used starts with users who own nothing.
func makeUsers(n int) []string {
	prefix := "lg" + strconv.FormatInt(time.Now().UnixNano()/int64(time.Millisecond)%1e9, 36) + "-"
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i+1)
	}
	return out
}

// PhaseReport is a herd or a storm, as reported.
type PhaseReport struct {
	Concurrency int     `json:"concurrency"`
	ElapsedS    float64 `json:"elapsed_s"`
	// WallS: herd only, from the first request to the purchase that sold
	// the sale out; null when it never came.
	WallS     *float64        `json:"wall_s,omitempty"`
	Purchases int64           `json:"purchases,omitempty"`
	UsersUsed int64           `json:"users_used,omitempty"`
	TimedOut  bool            `json:"timed_out,omitempty"`
	Checkout  EndpointReport  `json:"checkout"`
	Purchase  *EndpointReport `json:"purchase,omitempty"`
	// Others: storm checkouts of every user but the hot one (-hot-clients).
	Others *EndpointReport `json:"others,omitempty"`
	// Storm only: checkout_attempts rows before and after.
	AttemptsBefore *int64    `json:"attempts_before,omitempty"`
	AttemptsAfter  *int64    `json:"attempts_after,omitempty"`
	CPU            CPUUsage  `json:"cpu"`
	WAL            *WALUsage `json:"wal,omitempty"`
}

// EndpointReport is one endpoint's requests in a phase.
type EndpointReport struct {
	Requests        int64            `json:"requests"`
	PerSecond       float64          `json:"per_second"`
	P50MS           float64          `json:"p50_ms"`
	P95MS           float64          `json:"p95_ms"`
	P99MS           float64          `json:"p99_ms"`
	MaxMS           float64          `json:"max_ms"`
	MeanMS          float64          `json:"mean_ms"`
	Outcomes        map[string]int64 `json:"outcomes"`
	Stored          int64            `json:"attempts_answered,omitempty"`
	TransportErrors int64            `json:"transport_errors"`
	ServerErrors    int64            `json:"server_errors_5xx"`
	ErrorSamples    []string         `json:"error_samples,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func endpointReport(s *endpointStats, elapsed time.Duration, withStored bool) EndpointReport {
	r := EndpointReport{
		Requests: int64(s.hist.Count()),
		P50MS:    ms(s.hist.Quantile(0.50)), P95MS: ms(s.hist.Quantile(0.95)), P99MS: ms(s.hist.Quantile(0.99)),
		MaxMS: ms(s.hist.Max()), MeanMS: ms(s.hist.Mean()),
		Outcomes: map[string]int64{}, TransportErrors: s.errors, ServerErrors: s.serverErrors(), ErrorSamples: s.samples,
	}
	if elapsed > 0 {
		r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	}
	for k, v := range s.outcomes {
		r.Outcomes[outcomeLabel(k)] += v
	}
	if withStored {
		r.Stored = s.stored()
	}
	return r
}

func outcomeLabel(k outcomeKey) string {
	if k.status == 0 {
		return k.outcome
	}
	return strconv.Itoa(k.status) + " " + k.outcome
}

func phaseReport(p *phaseRun, concurrency int, cpu CPUUsage) PhaseReport {
	r := PhaseReport{
		Concurrency: concurrency, ElapsedS: p.elapsed.Seconds(), Purchases: p.purchases, UsersUsed: p.usersUsed,
		TimedOut: p.timedOut, CPU: cpu,
		Checkout: endpointReport(p.checkout, p.elapsed, true),
	}
	if p.wall > 0 {
		w := p.wall.Seconds()
		r.WallS = &w
	}
	pr := endpointReport(p.purchase, p.elapsed, false)
	r.Purchase = &pr
	if p.others != nil {
		o := endpointReport(p.others, p.elapsed, true)
		r.Others = &o
	}
	return r
}
