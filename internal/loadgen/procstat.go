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

// namedCPU snapshots the CPU time of every local process called name
// ("postgres": the server and its backends), by pid. Backends that exit
// between two snapshots take their time with them, so the difference is a
// lower bound; the pools keep their connections open, so it is close.
func namedCPU(name string) map[int]time.Duration {
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
		cpu, err := parseStatCPU(b)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		out[pid] = cpu
	}
	return out
}

func cpuDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, a := range after {
		d += a - before[pid]
	}
	return d
}

// cpuMeter measures the CPU used by loadgen, the servers (when their pids
// are known) and the local PostgreSQL over a phase.
type cpuMeter struct {
	serverPIDs []int
	server     time.Duration
	self       time.Duration
	pg, pooler map[int]time.Duration
}

func startCPU(serverPIDs []int, pooler bool) *cpuMeter {
	m := &cpuMeter{serverPIDs: serverPIDs, self: selfCPU(), pg: namedCPU("postgres")}
	if pooler {
		m.pooler = namedCPU("pgbouncer")
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
	Server   *float64 `json:"server_s,omitempty"`
	Loadgen  float64  `json:"loadgen_s"`
	Postgres float64  `json:"postgres_s"`
	// Pooler is every local pgbouncer process's; absent without one.
	Pooler *float64 `json:"pooler_s,omitempty"`
	Wall   float64  `json:"wall_s"`
}

func (m *cpuMeter) stop(wall time.Duration) CPUUsage {
	u := CPUUsage{
		Loadgen:  (selfCPU() - m.self).Seconds(),
		Postgres: cpuDelta(m.pg, namedCPU("postgres")).Seconds(),
		Wall:     wall.Seconds(),
	}
	if m.pooler != nil {
		p := cpuDelta(m.pooler, namedCPU("pgbouncer")).Seconds()
		u.Pooler = &p
	}
	if len(m.serverPIDs) > 0 {
		if c, err := procsCPU(m.serverPIDs); err == nil {
			s := (c - m.server).Seconds()
			u.Server = &s
		}
	}
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
