// Package loadgen benchmarks the flash-sale service through its HTTP API as
// it is deployed: a herd that sells a fresh sale out, a storm of checkouts
// against the sold-out sale, the storm again beside clients that read the
// sale, the same herd and storm driven straight at PostgreSQL (the database
// ceiling), a storm against the HTTP stack alone (the HTTP ceiling), the
// invariants that must hold afterwards, and a report (table and JSON).
//
// This package runs those in order; its sub-packages do the work: driver
// (the clients), phase (herd, storm, readers), invariant (the SQL checks),
// usage (CPU, memory, WAL), report (figures, targets, table, JSON),
// deploy (databases, PgBouncer and servers, started and stopped) and
// webhook (the receiver of the servers' webhooks, with -webhooks).
//
// Nothing is done to the database that the product does not do itself: no
// ANALYZE, no CHECKPOINT, no warm-up. The server analyzes a new sale's
// tables when it creates the sale (internal/sale, SaleTablesAnalyze).
package loadgen
