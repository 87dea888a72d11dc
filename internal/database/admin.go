package database

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// CreateDatabase creates database name, cloned from template ("": the
// server's default), on the server of adminURL and returns its URL. Errors
// wrap PostgreSQL's, so callers can tell a busy template (55006) or a
// taken name (42P04) apart.
func CreateDatabase(ctx context.Context, adminURL, name, template string) (string, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return "", fmt.Errorf("parse admin URL: %w", err)
	}
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := adminExec(ctx, adminURL, sql); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return ReplaceDatabase(adminURL, cfg.Database, name), nil
}

// DropDatabase drops database name on the server of adminURL, if it
// exists, closing whatever is still connected to it.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	if err := adminExec(ctx, adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// adminExec runs sql alone on a fresh connection: CREATE and DROP DATABASE
// refuse to run inside a transaction.
func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// redact hides a password in a URL.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxx")
			return u.String()
		}
	}
	return s
}
