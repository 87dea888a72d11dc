package report

import (
	"github.com/flashsale/flashsale/internal/loadgen/invariant"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
	"github.com/flashsale/flashsale/internal/loadgen/usage"
)

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
	Reads      *ReadsReport      `json:"reads,omitempty"`
	Invariants []invariant.Check `json:"invariants"`
	// Server is the service's processes, when their pids are known.
	Server *usage.Server `json:"server,omitempty"`
	// Conns is the baseline's pool size.
	Conns int `json:"db_conns,omitempty"`
	// Webhooks: the service's deliveries, when run with -webhooks.
	Webhooks *WebhookReport `json:"webhooks,omitempty"`
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

// ReadReport is one read endpoint's requests during the reads phase.
type ReadReport struct {
	Path    string `json:"path"`
	Clients int    `json:"clients"`
	EndpointReport
}

// Readers reports the readers of a reads phase.
func Readers(reads []phase.Reads) []ReadReport {
	out := make([]ReadReport, 0, len(reads))
	for _, r := range reads {
		out = append(out, ReadReport{Path: r.Path, Clients: r.Clients, EndpointReport: endpoint(r.Stats, r.Elapsed, false)})
	}
	return out
}

// WebhookReport is what the servers' webhooks delivered to loadgen's
// receiver (-webhooks), held against the database.
type WebhookReport struct {
	invariant.Deliveries
	Requests   int64            `json:"requests"`        // every request the receiver got
	Accepted   int64            `json:"accepted"`        // signed and well-formed
	Distinct   int64            `json:"distinct_events"` // distinct event ids accepted
	Duplicates int64            `json:"duplicates"`      // redeliveries of an accepted event
	ByType     map[string]int64 `json:"events_by_type"`  // distinct events per type
	// DrainS is how long after the herd's last answer the last new
	// purchase event arrived (negative: before it); nil when none arrived.
	DrainS *float64 `json:"drain_s"`
	// WaitS is how long loadgen waited, after the last phase, for the
	// missing purchase events; TimedOut when it gave up.
	WaitS    float64 `json:"wait_s"`
	TimedOut bool    `json:"timed_out"`
}
