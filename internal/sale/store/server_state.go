package store

import (
	"context"
	"errors"
	"fmt"
)

// errNotPrimary: the write pool reached a server that takes no writes.
var errNotPrimary = errors.New("the write pool's server does not take writes")

// Writable reports, as ErrUnavailable, why the write pool's server cannot
// take the batches' writes right now, or nil. A connection to a server that
// is in recovery (a standby) or read-only (a demoted or fenced primary)
// drops every connection of the pool, so that the next are dialed to the
// host that takes writes (target_session_attrs=read-write).
func (s *Store) Writable(ctx context.Context) error {
	st, err := s.q.ServerWritable(ctx, s.pool)
	if err != nil {
		return wrap(err, "ask the write pool's server whether it takes writes")
	}
	var why string
	switch {
	case st.InRecovery:
		why = "it is a standby in recovery"
	case st.ReadOnly:
		why = "its transactions are read-only (default_transaction_read_only)"
	default:
		return nil
	}
	s.pool.Reset()
	return fmt.Errorf("%w: %w: %s", ErrUnavailable, errNotPrimary, why)
}
