package usage

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// WAL is the WAL PostgreSQL wrote over a phase (pg_stat_wal, cluster
// wide: other sessions' writes count too). Every request commits, and with
// synchronous_commit a commit waits for its WAL to reach the disk, so WAL
// per request is what the commit path pays for.
type WAL struct {
	Bytes      int64   `json:"bytes"`
	Records    int64   `json:"records"`
	FPI        int64   `json:"full_page_images"`
	BytesPerRq float64 `json:"bytes_per_request"`
}

// WALMark is pg_stat_wal at a point of a run.
type WALMark struct {
	ok                  bool
	bytes, records, fpi int64
}

// ReadWAL reads pg_stat_wal; a failed read leaves the WAL figures out of
// the report rather than failing the run.
func ReadWAL(ctx context.Context, pool *pgxpool.Pool) WALMark {
	var s WALMark
	err := pool.QueryRow(ctx, "SELECT wal_bytes::bigint, wal_records, wal_fpi FROM pg_stat_wal").Scan(&s.bytes, &s.records, &s.fpi)
	s.ok = err == nil
	return s
}

// WALBetween is the WAL written from before to after, per request of
// requests; nil when either mark is missing.
func WALBetween(before, after WALMark, requests int64) *WAL {
	if !before.ok || !after.ok {
		return nil
	}
	u := &WAL{Bytes: after.bytes - before.bytes, Records: after.records - before.records, FPI: after.fpi - before.fpi}
	if requests > 0 {
		u.BytesPerRq = float64(u.Bytes) / float64(requests)
	}
	return u
}
