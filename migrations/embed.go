// Package migrations holds the goose SQL migrations, embedded so the server
// binary carries its own schema. sqlc reads the same files as its schema.
package migrations

import "embed"

//go:embed *.sql
var FS embed.FS
