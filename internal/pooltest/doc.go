// Package pooltest holds the tests of the service behind PgBouncer in
// transaction pooling mode: real server processes, the real pooler
// (internal/pgbouncer) and one real database. It has no code of its own.
package pooltest
