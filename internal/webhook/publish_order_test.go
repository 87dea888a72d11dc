package webhook_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// TestSaleStartedComesFirst: a sale's first event is its start, even when
// the sale starts, and is bought from, between the moment a publisher's
// transaction begins (its now()) and the moment its publishing statement
// takes its snapshot. The publisher's turn is replayed here statement by
// statement (the store runs the same queries: BEGIN, EventsPublishLock,
// EventsPublish) with the purchase made in between.
func TestSaleStartedComesFirst(t *testing.T) {
	t.Parallel()
	lock, publish := storeQuery(t, "eventsPublishLock"), storeQuery(t, "eventsPublish")
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	ctx := context.Background()

	tx, err := srv.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var began time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&began); err != nil {
		t.Fatal(err)
	}
	// A sale starting just after the publisher's transaction began.
	if _, err := srv.Sales.EnsureSale(ctx, began.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var hold apitest.Reply
	waitFor(t, 5*time.Second, func() error {
		hold = apitest.Checkout(t, srv.URL, "early-bird", 1)
		if hold.Status != http.StatusCreated {
			return fmt.Errorf("checkout: %d %s", hold.Status, hold.Raw)
		}
		return nil
	})
	apitest.Bought(t, srv.URL, hold.Body)

	var locked bool
	if err := tx.QueryRow(ctx, lock).Scan(&locked); err != nil || !locked {
		t.Fatalf("publisher's lock: %v, %v", locked, err)
	}
	if _, err := tx.Exec(ctx, publish, 5000, 25*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The next turn, as the server runs it.
	if _, err := srv.Sales.PublishEvents(ctx, sale.Publish{Max: 5000, Lookback: 25 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	evs := dbEvents(t, srv.Pool)
	checkSequences(t, evs)
	if got := types(evs); !slices.Equal(got, []string{"sale.started", "purchase.completed"}) {
		t.Errorf("events in sequence order %v, want the sale's start before its purchase", got)
	}
}

// storeQuery is the text of a query the store runs, read from the code
// sqlc generated (db/events.sql.go) rather than imported: only the store
// may import package db (make layout-check), and its API cannot stop
// between the statements of a publisher's turn.
func storeQuery(t *testing.T, name string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../db/events.sql.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var query string
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || spec.Names[0].Name != name || len(spec.Values) != 1 {
			return true
		}
		if lit, ok := spec.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			query, _ = strconv.Unquote(lit.Value)
		}
		return false
	})
	if query == "" {
		t.Fatalf("no query %s in db/events.sql.go", name)
	}
	return query
}
