// Package loadgen benchmarks the flash-sale service through its HTTP API as
// it is deployed: a herd that sells a fresh sale out, a storm of checkouts
// against the sold-out sale, the storm again beside clients that read the
// sale, the same herd and storm driven straight at PostgreSQL (the database
// ceiling), a storm against the HTTP stack alone (the HTTP ceiling), the
// invariants that must hold afterwards, and a report (table and JSON).
//
// Nothing is done to the database that the product does not do itself: no
// ANALYZE, no CHECKPOINT, no warm-up. The server analyzes a new sale's
// tables when it creates the sale (internal/sale, SaleTablesAnalyze).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
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

	// ReadCurrent and ReadItems clients loop on GET /sales/current and
	// GET /sales/current/items?limit=1000 during a second storm, the reads
	// phase, when Reads is set (RunService only).
	Reads       bool
	ReadCurrent int
	ReadItems   int
	// ReadInterval is each reader's pause between an answer and its next
	// request; 0 loops without pause.
	ReadInterval time.Duration

	// Baseline runs herd and storm straight at PostgreSQL as well.
	Baseline bool
	// BaselineConns sizes the baseline's pgxpool (default 4, the
	// server's DB_MAX_CONNS default).
	BaselineConns int
	// NewBaselineDB returns a fresh, empty database for the baseline and a
	// function that drops it.
	NewBaselineDB func(ctx context.Context) (url string, drop func(context.Context) error, err error)

	// Pooler: a PgBouncer stands between the servers and PostgreSQL; its
	// CPU is measured too.
	Pooler bool

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

// Target is a running service: one server or several on one database.
type Target struct {
	URLs  []string // base URLs of the HTTP API, one per server
	DBURL string   // its database (direct), for the SQL checks
	PIDs  []int    // its processes, for RSS and CPU; empty when unknown
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
	Sale  SaleInfo    `json:"sale"`
	Herd  PhaseReport `json:"herd"`
	Storm PhaseReport `json:"storm"`
	// Reads is the reads phase (service only): the storm again, with
	// read clients beside it.
	Reads      *ReadsReport `json:"reads,omitempty"`
	Invariants []Check      `json:"invariants"`
	// Server is the service's processes, when their pids are known.
	Server *ServerUsage `json:"server,omitempty"`
	// Conns is the baseline's pool size.
	Conns int `json:"db_conns,omitempty"`
}

// ReadsReport is the reads phase: a storm beside read clients, compared
// with the storm alone.
type ReadsReport struct {
	Storm   PhaseReport  `json:"storm"`
	Readers []ReadReport `json:"readers"`
	// ReaderConns is how many connections the readers opened: one each
	// when keep-alive held.
	ReaderConns int64 `json:"reader_connections"`
	// AlonePerSecond is the storm alone's steady rate (after its first
	// window, see Timeline), the state the reads storm starts in; the
	// whole storm's rate when it had no timeline.
	AlonePerSecond float64 `json:"alone_checkouts_per_s"`
	WithPerSecond  float64 `json:"with_readers_checkouts_per_s"`
	Ratio          float64 `json:"ratio"` // with / alone
}

// ServerUsage is the service's processes' resources.
type ServerUsage struct {
	PIDs []int `json:"pids"`
	// PeakRSSBytes is the largest of the processes' peaks.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// CPUTotalS is the processes' CPU since they started, together.
	CPUTotalS float64 `json:"cpu_total_s"`
}

func serverUsage(pids []int) (*ServerUsage, error) {
	u := &ServerUsage{PIDs: pids}
	for _, pid := range pids {
		rss, err := ProcPeakRSS(pid)
		if err != nil {
			return nil, fmt.Errorf("peak RSS of pid %d: %w", pid, err)
		}
		u.PeakRSSBytes = max(u.PeakRSSBytes, rss)
	}
	cpu, err := procsCPU(pids)
	if err != nil {
		return nil, fmt.Errorf("CPU of pids %v: %w", pids, err)
	}
	u.CPUTotalS = cpu.Seconds()
	return u, nil
}

// RunService runs herd, storm, the reads phase (opts.Reads) and the
// invariant checks against a service.
func RunService(ctx context.Context, opts Options, t Target) (*SideResult, error) {
	opts.setDefaults()
	pool, err := database.Open(ctx, t.DBURL, 4, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	driver, err := NewHTTPDriver(t.URLs, opts.RequestTimeout)
	if err != nil {
		return nil, err
	}
	res, err := runSide(ctx, opts, side{name: "service", driver: driver, pool: pool, pids: t.PIDs, urls: t.URLs})
	if err != nil {
		return nil, err
	}
	if len(t.PIDs) > 0 {
		if res.Server, err = serverUsage(t.PIDs); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// RunBaseline creates a fresh database (opts.NewBaselineDB), migrates it,
// creates a sale like ref, and runs herd and storm with the SQL driver: the
// database ceiling. Like the server, it opens its pool's connections as
// they are needed and plans with the statistics the sale's creation left.
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
	opts.Reads, opts.Pooler = false, false
	res, err := runSide(ctx, opts, side{name: "baseline", driver: NewSQLDriver(svc), pool: pool})
	if err != nil {
		return nil, err
	}
	res.Conns = opts.BaselineConns
	return res, nil
}

// side is what runSide drives.
type side struct {
	name   string
	driver Driver
	pool   *pgxpool.Pool // the database, direct
	pids   []int         // server processes, for CPU
	urls   []string      // servers, for the readers
}

// attemptsMark is checkout_attempts' row count and the WAL position at a
// point of the run.
type attemptsMark struct {
	rows int64
	wal  walSnapshot
}

func mark(ctx context.Context, pool *pgxpool.Pool) (attemptsMark, error) {
	n, err := countAttempts(ctx, pool)
	return attemptsMark{rows: n, wal: readWAL(ctx, pool)}, err
}

// runSide runs herd, storm and (opts.Reads, with urls) the reads phase with
// sd.driver against the current sale of sd.pool's database, and checks the
// invariants.
func runSide(ctx context.Context, opts Options, sd side) (*SideResult, error) {
	pool := sd.pool
	row, err := db.New().SaleGetCurrent(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("%s: current sale: %w", sd.name, err)
	}
	state0, err := readSaleState(ctx, pool, row.ID)
	if err != nil {
		return nil, err
	}
	info := SaleInfo{
		ID: row.ID, Units: int64(row.UnitsTotal), Items: int64(row.Items), PerUserLimit: int64(row.PerUserLimit),
		HoldTTLS: row.HoldTTL.Seconds(), SoldBefore: state0.unitsSold,
	}
	if state0.unitsSold > 0 {
		fmt.Fprintf(opts.Log, "loadgen: %s: warning: sale %d is not fresh, %d of %d units were sold before the run\n",
			sd.name, info.ID, state0.unitsSold, info.Units)
	}
	var dbName string
	if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&dbName); err != nil {
		return nil, fmt.Errorf("%s: database name: %w", sd.name, err)
	}
	m0, err := mark(ctx, pool)
	if err != nil {
		return nil, err
	}
	users := makeUsers(opts.Users)

	fmt.Fprintf(opts.Log, "loadgen: %s herd: sale %d, %d units over %d items, %d users, %d clients, pick %s\n",
		sd.name, info.ID, info.Units-info.SoldBefore, info.Items, len(users), opts.Concurrency, opts.Pick)
	cpu := startCPU(sd.pids, dbName, opts.Pooler)
	herd := runHerd(ctx, sd.driver, herdSpec{
		users: users, concurrency: opts.Concurrency, items: int(info.Items),
		want: info.Units - info.SoldBefore, pick: opts.Pick, timeout: opts.HerdTimeout,
	})
	herdCPU := cpu.stop(herd.elapsed)
	fmt.Fprintf(opts.Log, "loadgen: %s herd: %d purchases in %.2fs (%d checkouts)\n",
		sd.name, herd.purchases, herd.wall.Seconds(), herd.checkout.hist.Count())
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	m1, err := mark(ctx, pool)
	if err != nil {
		return nil, err
	}
	storm := stormSpec{users: users, concurrency: opts.StormConcurrency, items: int(info.Items), duration: opts.StormDuration,
		hotClients: opts.HotClients}
	fmt.Fprintf(opts.Log, "loadgen: %s storm: %d clients for %s\n", sd.name, opts.StormConcurrency, opts.StormDuration)
	cpu = startCPU(sd.pids, dbName, opts.Pooler)
	st := runStorm(ctx, sd.driver, storm)
	stormCPU := cpu.stop(st.elapsed)
	m2, err := mark(ctx, pool)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "loadgen: %s storm: %d checkouts in %.2fs\n", sd.name, st.checkout.hist.Count(), st.elapsed.Seconds())
	sr := stormReport(st, opts.StormConcurrency, stormCPU, m1, m2)
	storms := []stormCount{{name: "storm", stored: m2.rows - m1.rows, answered: st.checkout.stored()}}
	answered := herd.checkout.stored() + st.checkout.stored()
	mEnd := m2

	var reads *ReadsReport
	if opts.Reads && len(sd.urls) > 0 && opts.ReadCurrent+opts.ReadItems > 0 {
		fmt.Fprintf(opts.Log, "loadgen: %s reads: %d clients for %s beside %d on %s and %d on %s\n", sd.name,
			opts.StormConcurrency, opts.StormDuration, opts.ReadCurrent, readCurrentPath, opts.ReadItems, readItemsPath)
		rd := startReaders(ctx, readSpec{urls: sd.urls, current: opts.ReadCurrent, items: opts.ReadItems, timeout: opts.RequestTimeout, interval: opts.ReadInterval})
		cpu = startCPU(sd.pids, dbName, opts.Pooler)
		rst := runStorm(ctx, sd.driver, storm)
		rcpu := cpu.stop(rst.elapsed)
		readers, dials := rd.finish()
		m3, err := mark(ctx, pool)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(opts.Log, "loadgen: %s reads: %d checkouts in %.2fs\n", sd.name, rst.checkout.hist.Count(), rst.elapsed.Seconds())
		reads = &ReadsReport{Storm: stormReport(rst, opts.StormConcurrency, rcpu, m2, m3), Readers: readers, ReaderConns: dials}
		reads.AlonePerSecond = sr.Checkout.PerSecond
		if sr.Timeline != nil {
			reads.AlonePerSecond = sr.Timeline.RestPerSecond
		}
		reads.WithPerSecond = reads.Storm.Checkout.PerSecond
		if reads.AlonePerSecond > 0 {
			reads.Ratio = reads.WithPerSecond / reads.AlonePerSecond
		}
		storms = append(storms, stormCount{name: "storm beside readers", stored: m3.rows - m2.rows, answered: rst.checkout.stored()})
		answered += rst.checkout.stored()
		mEnd = m3
	}

	state, err := readSaleState(ctx, pool, info.ID)
	if err != nil {
		return nil, err
	}
	checks := checkInvariants(state, invariantInput{
		soldBefore: info.SoldBefore, herd: herd,
		attemptsStored: mEnd.rows - m0.rows, attemptsAnswer: answered,
		storms: storms,
	})
	hr := phaseReport(herd, opts.Concurrency, herdCPU)
	hr.WAL = walDelta(m0.wal, m1.wal, hr.requests())
	return &SideResult{Sale: info, Herd: hr, Storm: sr, Reads: reads, Invariants: checks}, nil
}

// stormReport is a storm's report, with the checkout_attempts rows and WAL
// between before and after.
func stormReport(st *phaseRun, concurrency int, cpu CPUUsage, before, after attemptsMark) PhaseReport {
	r := phaseReport(st, concurrency, cpu)
	r.Purchase = nil
	r.WAL = walDelta(before.wal, after.wal, r.Checkout.Requests)
	r.AttemptsBefore, r.AttemptsAfter = &before.rows, &after.rows
	r.Timeline = timeline(st)
	return r
}

// firstWindow is the start of a storm compared with the rest of it: a
// fresh server's first seconds must be as fast as its steady state.
const firstWindow = 10 * time.Second

// Timeline is a storm's answers per second: its first window against the
// rest. The window is firstWindow, or half a storm shorter than two of
// them (whole seconds); no timeline for a storm under 2 s.
type Timeline struct {
	WindowS        int     `json:"first_window_s"`
	FirstPerSecond float64 `json:"first_per_s"`
	RestPerSecond  float64 `json:"rest_per_s"`
	Ratio          float64 `json:"first_to_rest"` // first / rest
	// Counts are the answers that arrived in each second of the storm; the
	// last holds the few answers of requests in flight at its end.
	Counts []int64 `json:"per_second_counts"`
}

func timeline(st *phaseRun) *Timeline {
	window := min(firstWindow, st.elapsed/2).Truncate(time.Second)
	if window < time.Second {
		return nil
	}
	w := int(window / time.Second)
	t := &Timeline{WindowS: w, Counts: st.perSecond}
	var first, total int64
	for i, n := range st.perSecond {
		if i < w {
			first += n
		}
		total += n
	}
	t.FirstPerSecond = float64(first) / window.Seconds()
	if rest := st.elapsed - window; rest > 0 {
		t.RestPerSecond = float64(total-first) / rest.Seconds()
	}
	if t.RestPerSecond > 0 {
		t.Ratio = t.FirstPerSecond / t.RestPerSecond
	}
	return t
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
	// Timeline: storm only, its answers per second.
	Timeline *Timeline `json:"timeline,omitempty"`
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
