// Package failover drives the service through the loss of its primary
// database: a herd of shoppers through the real HTTP server (Herd), every
// answer they got logged, and afterwards each acknowledged write looked up
// in the database that survived (Verify). Its tests (failover_test.go, in
// make test) run a primary and a synchronous standby as local processes
// (internal/testkit/replica) and promote the standby by hand; the
// pg_auto_failover run (autofailover_test.go, build tag autofailover) is
// make test-failover.
package failover
