package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports (sysconf is out of reach without cgo).
const clockTicks = 100

// ProcCPU returns the CPU time (user + system) pid has used, from
// /proc/PID/stat.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (time.Duration, error) {
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat format")
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc stat format")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// ProcPeakRSS returns VmHWM, the peak resident set size of pid, in bytes.
func ProcPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, "VmHWM:")
}

func parseStatusKB(b []byte, key string) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, err
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, fmt.Errorf("%s not found", strings.TrimSuffix(key, ":"))
}

// selfCPU is this process's CPU time, user + system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// namedCPU snapshots the CPU time of every local process called name, by
// pid; keep, when set, picks among them by pid and command line.
func namedCPU(name string, keep func(pid int, cmdline string) bool) map[int]time.Duration {
	out := map[int]time.Duration{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		open := bytes.IndexByte(b, '(')
		closing := bytes.LastIndexByte(b, ')')
		if open < 0 || closing < open || string(b[open+1:closing]) != name {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if keep != nil {
			cmd, err := os.ReadFile(d + "/cmdline")
			if err != nil || !keep(pid, strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))) {
				continue
			}
		}
		cpu, err := parseStatCPU(b)
		if err != nil {
			continue
		}
		out[pid] = cpu
	}
	return out
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
	namedCPU("postgres", func(pid int, cmdline string) bool { titles[pid] = cmdline; return false })
	return namedCPU("postgres", func(pid int, cmdline string) bool {
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

// machineBusy is the CPU time every CPU of the machine has spent busy
// (not idle, not waiting for I/O), from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

func cpuDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, a := range after {
		d += a - before[pid]
	}
	return d
}

// cpuMeter measures the CPU used over a phase by loadgen, the servers
// (when their pids are known), PostgreSQL for the run's database, the
// pooler, and by everything else on the machine.
type cpuMeter struct {
	serverPIDs []int
	db         string
	server     time.Duration
	self       time.Duration
	machine    time.Duration
	pg, pooler map[int]time.Duration
}

// startCPU starts measuring; db is the run's database ("": none).
func startCPU(serverPIDs []int, db string, pooler bool) *cpuMeter {
	m := &cpuMeter{serverPIDs: serverPIDs, db: db, self: selfCPU(), pg: postgresCPU(db), machine: machineBusy()}
	if pooler {
		m.pooler = namedCPU("pgbouncer", nil)
	}
	m.server, _ = procsCPU(serverPIDs)
	return m
}

// procsCPU sums the CPU time of pids.
func procsCPU(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		c, err := ProcCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}

// CPUUsage is CPU time in seconds over a phase, per process group.
type CPUUsage struct {
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

func (m *cpuMeter) stop(wall time.Duration) CPUUsage {
	u := CPUUsage{
		Loadgen:     (selfCPU() - m.self).Seconds(),
		Postgres:    cpuDelta(m.pg, postgresCPU(m.db)).Seconds(),
		MachineBusy: (machineBusy() - m.machine).Seconds(),
		Wall:        wall.Seconds(),
	}
	ours := u.Loadgen + u.Postgres
	if m.pooler != nil {
		p := cpuDelta(m.pooler, namedCPU("pgbouncer", nil)).Seconds()
		u.Pooler = &p
		ours += p
	}
	if len(m.serverPIDs) > 0 {
		if c, err := procsCPU(m.serverPIDs); err == nil {
			s := (c - m.server).Seconds()
			u.Server = &s
			ours += s
		}
	}
	u.Others = max(0, u.MachineBusy-ours)
	return u
}

// WALUsage is the WAL PostgreSQL wrote over a phase (pg_stat_wal, cluster
// wide: other sessions' writes count too). Every request commits, and with
// synchronous_commit a commit waits for its WAL to reach the disk, so WAL
// per request is what the commit path pays for.
type WALUsage struct {
	Bytes      int64   `json:"bytes"`
	Records    int64   `json:"records"`
	FPI        int64   `json:"full_page_images"`
	BytesPerRq float64 `json:"bytes_per_request"`
}

type walSnapshot struct {
	ok                  bool
	bytes, records, fpi int64
}

func readWAL(ctx context.Context, pool *pgxpool.Pool) walSnapshot {
	var s walSnapshot
	err := pool.QueryRow(ctx, "SELECT wal_bytes::bigint, wal_records, wal_fpi FROM pg_stat_wal").Scan(&s.bytes, &s.records, &s.fpi)
	s.ok = err == nil
	return s
}

func walDelta(before, after walSnapshot, requests int64) *WALUsage {
	if !before.ok || !after.ok {
		return nil
	}
	u := &WALUsage{Bytes: after.bytes - before.bytes, Records: after.records - before.records, FPI: after.fpi - before.fpi}
	if requests > 0 {
		u.BytesPerRq = float64(u.Bytes) / float64(requests)
	}
	return u
}
