// Package usage measures what a benchmark phase cost the machine: CPU by
// process group (servers, load generator, PostgreSQL, pooler, the rest),
// the servers' memory, and the WAL PostgreSQL wrote.
package usage

import (
	"strconv"
	"strings"
	"time"

	"github.com/flashsale/flashsale/internal/process"
)

// CPU is CPU time in seconds over a phase, per process group.
type CPU struct {
	// Server is every server process's together; absent when their pids
	// are unknown.
	Server  *float64 `json:"server_s,omitempty"`
	Loadgen float64  `json:"loadgen_s"`
	// Postgres: the run's database's backends and the cluster's shared
	// processes.
	Postgres float64 `json:"postgres_s"`
	// Pooler is every local pgbouncer process's; absent without one.
	Pooler *float64 `json:"pooler_s,omitempty"`
	// Others is the rest of the machine's busy time: other processes and
	// other databases' backends. The box is shared; a phase with a large
	// Others measured less than the box can do.
	Others float64 `json:"others_s"`
	// MachineBusy is all the CPUs' busy time (of Wall × CPUs).
	MachineBusy float64 `json:"machine_busy_s"`
	Wall        float64 `json:"wall_s"`
}

// Meter measures the CPU used over a phase by the load generator, the
// servers (when their pids are known), PostgreSQL for the run's database,
// the pooler, and by everything else on the machine.
type Meter struct {
	serverPIDs []int
	db         string
	server     time.Duration
	self       time.Duration
	machine    time.Duration
	pg, pooler map[int]time.Duration
}

// StartCPU starts measuring; db is the run's database ("": none).
func StartCPU(serverPIDs []int, db string, pooler bool) *Meter {
	m := &Meter{serverPIDs: serverPIDs, db: db, self: process.SelfCPU(), pg: postgresCPU(db), machine: process.MachineBusy()}
	if pooler {
		m.pooler = process.Named("pgbouncer", nil)
	}
	m.server, _ = process.CPUs(serverPIDs)
	return m
}

// Stop returns the CPU used since StartCPU, over a phase of wall.
func (m *Meter) Stop(wall time.Duration) CPU {
	u := CPU{
		Loadgen:     (process.SelfCPU() - m.self).Seconds(),
		Postgres:    cpuDelta(m.pg, postgresCPU(m.db)).Seconds(),
		MachineBusy: (process.MachineBusy() - m.machine).Seconds(),
		Wall:        wall.Seconds(),
	}
	ours := u.Loadgen + u.Postgres
	if m.pooler != nil {
		p := cpuDelta(m.pooler, process.Named("pgbouncer", nil)).Seconds()
		u.Pooler = &p
		ours += p
	}
	if len(m.serverPIDs) > 0 {
		if c, err := process.CPUs(m.serverPIDs); err == nil {
			s := (c - m.server).Seconds()
			u.Server = &s
			ours += s
		}
	}
	u.Others = max(0, u.MachineBusy-ours)
	return u
}

func cpuDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, a := range after {
		d += a - before[pid]
	}
	return d
}

// postgresCPU snapshots the local PostgreSQL processes that work for a
// run on database db: its backends and autovacuum workers, their parallel
// workers, and the cluster's shared processes (postmaster, WAL writer,
// checkpointer, ...). Backends of other databases are someone else's load
// on a shared box. Backends that exit between two snapshots take their
// time with them; the pools keep their connections open, so the
// difference is close.
func postgresCPU(db string) map[int]time.Duration {
	titles := map[int]string{}
	process.Named("postgres", func(pid int, cmdline string) bool { titles[pid] = cmdline; return false })
	return process.Named("postgres", func(pid int, cmdline string) bool {
		d := pgTitleDB(cmdline)
		if leader, ok := pgParallelLeader(cmdline); ok {
			d = pgTitleDB(titles[leader])
		}
		return d == "" || d == db
	})
}

// pgTitleDB is the database a PostgreSQL process title names: "postgres:
// [cluster: ]user db host(port) state" for a backend, "... autovacuum
// worker db" for an autovacuum worker; "" for the shared processes.
func pgTitleDB(title string) string {
	f := strings.Fields(title)
	for i := 2; i < len(f); i++ {
		if f[i] == "[local]" || (strings.Contains(f[i], "(") && strings.HasSuffix(f[i], ")")) {
			return f[i-1]
		}
	}
	for i := 1; i+1 < len(f); i++ {
		if f[i-1] == "autovacuum" && f[i] == "worker" {
			return f[i+1]
		}
	}
	return ""
}

// pgParallelLeader reads "... parallel worker for PID n".
func pgParallelLeader(title string) (int, bool) {
	_, rest, ok := strings.Cut(title, "parallel worker for PID ")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.Fields(rest + " x")[0])
	return pid, err == nil
}
