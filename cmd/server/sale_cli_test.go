package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// `server sale ...` run as an operator runs it, each test on a database of
// its own with no server running: what it prints, its exit code, and what
// it leaves in the database.
func TestSaleCommands(t *testing.T) {
	bin := buildServer(t)
	actor := cliActor() // the binary runs as the test's user

	t.Run("help and misuse", func(t *testing.T) {
		for _, args := range [][]string{{"sale", "-h"}, {"sale", "help"}, {"sale", "list", "-h"}} {
			code, out, errOut := runServer(t, bin, "", nil, args...)
			expectRun(t, code, out, errOut, 0, "Usage: server sale", "apply -f FILE", "list [-since T]", "show ID",
				"pause ID", "resume ID", "end ID", `"cli:"`)
		}
		for _, args := range [][]string{
			{"sale"}, {"sale", "bogus"}, {"sale", "apply"}, {"sale", "apply", "-f", "a.json", "extra"},
			{"sale", "pause"}, {"sale", "pause", "x"}, {"sale", "end", "0"}, {"sale", "resume", "1", "2"},
			{"sale", "pause", "-f", "a.json", "1"}, {"sale", "apply", "-json", "-f", "a.json"},
			{"sale", "list", "-limit", "0"}, {"sale", "list", "-limit", "501"}, {"sale", "list", "-since", "yesterday"},
			{"sale", "list", "extra"}, {"sale", "show"},
		} {
			code, out, errOut := runServer(t, bin, "", nil, args...)
			if code != 2 || !strings.Contains(errOut, "Usage: server sale") || out != "" {
				t.Errorf("%v: exit %d, want 2 with the sale usage on stderr\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
			}
		}
	})

	t.Run("apply is idempotent", func(t *testing.T) {
		c := newSaleCLI(t, bin)
		start := c.now().Truncate(time.Hour).Add(2 * time.Hour)
		def := mugs(start)
		file := c.write("sale.json", def)

		code, out, errOut := c.run("", "sale", "apply", "-f", file)
		expectRun(t, code, out, errOut, 0)
		id := c.onlySale()
		window := fmt.Sprintf("%s to %s", start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339))
		if want := fmt.Sprintf("created sale %d: %s, 2 items, 150 units\n", id, window); out != want {
			t.Fatalf("first apply printed %q, want %q", out, want)
		}
		// The same file, and the same document on stdin: nothing changes.
		code, out, errOut = c.run("", "sale", "apply", "-f", file)
		expectRun(t, code, out, errOut, 0)
		if want := fmt.Sprintf("unchanged sale %d: %s, 2 items, 150 units\n", id, window); out != want {
			t.Fatalf("second apply printed %q, want %q", out, want)
		}
		code, out, errOut = c.run(string(sale.EncodeDefinition(def)), "sale", "apply", "-f", "-")
		expectRun(t, code, out, errOut, 0, fmt.Sprintf("unchanged sale %d:", id))
		c.expectAudit(id, actor, "create")

		// show prints a file that applies as it is and can be edited.
		code, out, errOut = c.run("", "sale", "show", fmt.Sprint(id))
		expectRun(t, code, out, errOut, 0)
		shown, err := sale.ParseDefinition(strings.NewReader(out))
		if err != nil {
			t.Fatalf("show printed no definition: %v\n%s", err, out)
		}
		if !shown.StartsAt.Equal(def.StartsAt) || !slices.Equal(shown.Items, def.Items) {
			t.Fatalf("show printed %+v, applied %+v", shown, def)
		}
		code, out, errOut = c.run(out, "sale", "apply", "-f", "-")
		expectRun(t, code, out, errOut, 0, fmt.Sprintf("unchanged sale %d:", id))

		shown.Items[1].Units = 60
		shown.Items[1].Price = "13.00"
		c.write("sale.json", shown)
		code, out, errOut = c.run("", "sale", "apply", "-f", file)
		expectRun(t, code, out, errOut, 0)
		if want := fmt.Sprintf("replaced sale %d: %s, 2 items, 160 units\n", id, window); out != want {
			t.Fatalf("apply of the edited file printed %q, want %q", out, want)
		}
		c.expectAudit(id, actor, "create", "replace")

		// Another start inside the window is another sale, which the
		// window refuses.
		code, out, errOut = c.run(string(sale.EncodeDefinition(mugs(start.Add(30*time.Minute)))), "sale", "apply", "-f", "-")
		expectRun(t, code, out, errOut, 1)
		if !strings.Contains(errOut, "server: the sale's window overlaps another sale") {
			t.Fatalf("an overlapping window: stderr %q", errOut)
		}
		c.expectAudit(id, actor, "create", "replace")
		if n := pgtest.Scalar(t, c.pool, "SELECT count(*) FROM units WHERE sale_id = $1", id); n != 160 {
			t.Fatalf("sale %d has %d units after the replace, want 160", id, n)
		}
		if n := pgtest.Scalar(t, c.pool, "SELECT price_cents FROM items WHERE sale_id = $1 AND sku = 'MUG-BLUE'", id); n != 1300 {
			t.Fatalf("MUG-BLUE costs %d cents after the replace, want 1300", n)
		}
	})

	t.Run("an invalid definition names each field", func(t *testing.T) {
		c := newSaleCLI(t, bin)
		def := mugs(c.now().Truncate(time.Hour).Add(2 * time.Hour))
		def.Items[0].Price = "-1"
		def.Items[1].SKU = def.Items[0].SKU
		def.Items[1].ImageURL = "ftp://shop.example/mug.jpg"
		code, out, errOut := c.run("", "sale", "apply", "-f", c.write("bad.json", def))
		expectRun(t, code, out, errOut, 1)
		for _, want := range []string{
			"server: invalid sale definition:\n",
			"\n  items[0].price: must not be negative\n",
			"\n  items[1].sku: \"MUG-RED\" is also items[0]'s sku\n",
			"\n  items[1].image_url: must be an absolute http or https URL",
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		code, out, errOut = c.run(`{"starts_at": "2026-12-05T10:00:00Z", "per_user_limt": 3}`, "sale", "apply", "-f", "-")
		expectRun(t, code, out, errOut, 1)
		if !strings.Contains(errOut, "per_user_limt") {
			t.Errorf("a misspelt field is not named:\n%s", errOut)
		}
		code, out, errOut = c.run("", "sale", "apply", "-f", filepath.Join(t.TempDir(), "missing.json"))
		expectRun(t, code, out, errOut, 1)
		if !strings.Contains(errOut, "missing.json") {
			t.Errorf("a missing file is not named:\n%s", errOut)
		}
		if n := pgtest.Scalar(t, c.pool, "SELECT count(*) FROM sales"); n != 0 {
			t.Fatalf("%d sales after invalid definitions", n)
		}
		if n := pgtest.Scalar(t, c.pool, "SELECT count(*) FROM admin_actions"); n != 0 {
			t.Fatalf("%d admin actions after invalid definitions", n)
		}
	})

	t.Run("list", func(t *testing.T) {
		c := newSaleCLI(t, bin)
		first := c.now().Truncate(time.Hour).Add(2 * time.Hour)
		for _, start := range []time.Time{first, first.Add(3 * time.Hour)} {
			code, out, errOut := c.run(string(sale.EncodeDefinition(mugs(start))), "sale", "apply", "-f", "-")
			expectRun(t, code, out, errOut, 0, "created sale")
		}
		code, out, errOut := c.run("", "sale", "list")
		expectRun(t, code, out, errOut, 0)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID STATUS STARTS AT ENDS AT ITEMS SOLD/UNITS DEFINED BY" {
			t.Fatalf("list printed:\n%s", out)
		}
		var ids []int64
		for i, line := range lines[1:] {
			start := first.Add(time.Duration(3*i) * time.Hour)
			var id int64
			fmt.Sscan(line, &id)
			ids = append(ids, id)
			want := fmt.Sprintf("%d scheduled %s %s 2 0/150 %s", id, start.Format(time.RFC3339),
				start.Add(time.Hour).Format(time.RFC3339), actor)
			if got := strings.Join(strings.Fields(line), " "); got != want {
				t.Fatalf("list row %d is %q, want %q", i, got, want)
			}
		}
		if errOut != "" {
			t.Fatalf("a whole list says more on stderr: %q", errOut)
		}

		// -since skips the first; -limit 1 says where the rest starts.
		listed := c.listed(first.Add(time.Hour))
		if len(listed) != 1 {
			t.Fatalf("-since %s -json listed %+v", first.Add(time.Hour), listed)
		}
		got := listed[0]
		if got.ID != ids[1] || got.Status != "scheduled" || got.UnitsTotal != 150 || got.UnitsAvailable != 150 ||
			got.Items != 2 || got.PerUserLimit != 2 || got.HoldTTLSeconds != 300 || got.DefinedBy != actor || got.PausedAt != nil {
			t.Fatalf("-json listed %+v", got)
		}
		code, out, errOut = c.run("", "sale", "list", "-limit", "1")
		expectRun(t, code, out, errOut, 0, fmt.Sprintf("\n%d ", ids[0]))
		if strings.Contains(out, fmt.Sprintf("\n%d ", ids[1])) ||
			errOut != fmt.Sprintf("more: server sale list -since %s -limit 1\n", first.Add(time.Hour).Format(time.RFC3339)) {
			t.Fatalf("-limit 1 printed\n%s\nstderr: %q", out, errOut)
		}
	})

	t.Run("pause, resume and end a running sale", func(t *testing.T) {
		c := newSaleCLI(t, bin, "SALE_EDIT_LEAD=2s")
		// More than the 2 s lead ahead when the command checks it.
		start := c.now().Add(6 * time.Second).Truncate(time.Second)
		code, out, errOut := c.run(string(sale.EncodeDefinition(mugs(start))), "sale", "apply", "-f", "-")
		expectRun(t, code, out, errOut, 0, "created sale")
		id := c.onlySale()
		sid := fmt.Sprint(id)

		code, out, errOut = c.run("", "sale", "pause", sid)
		expectRun(t, code, out, errOut, 1)
		if want := fmt.Sprintf("server: sale %d is not running: it has not started or has ended\n", id); errOut != want {
			t.Fatalf("pause before the start: stderr %q, want %q", errOut, want)
		}
		testutil.Poll(t, 30*time.Second, func() error {
			if now := c.now(); now.Before(start) {
				return fmt.Errorf("the database's clock is %s, the sale starts at %s", now, start)
			}
			return nil
		})

		edited := mugs(start)
		edited.Items[0].Units = 1
		code, out, errOut = c.run(string(sale.EncodeDefinition(edited)), "sale", "apply", "-f", "-")
		expectRun(t, code, out, errOut, 1)
		if !strings.Contains(errOut, "server: invalid sale definition:\n  starts_at: must be more than 2s from now") {
			t.Fatalf("replacing a started sale: stderr %q", errOut)
		}

		for _, step := range []struct{ args, out, status string }{
			{"pause", "paused sale %d\n", "paused"},
			{"pause", "sale %d was already paused\n", "paused"},
			{"resume", "resumed sale %d\n", "running"},
			{"resume", "sale %d was not paused\n", "running"},
			{"pause", "paused sale %d\n", "paused"},
			{"end", "ended sale %d\n", "ended"},
		} {
			code, out, errOut = c.run("", "sale", step.args, sid)
			expectRun(t, code, out, errOut, 0)
			if want := fmt.Sprintf(step.out, id); out != want {
				t.Fatalf("%s printed %q, want %q", step.args, out, want)
			}
			if got := c.listed(start.Add(-time.Hour)); len(got) != 1 || got[0].ID != id || got[0].Status != step.status ||
				step.status != "ended" && (got[0].PausedAt != nil) != (step.status == "paused") {
				t.Fatalf("after %s, list says %+v, want sale %d %s", step.args, got, id, step.status)
			}
		}
		c.expectAudit(id, actor, "create", "pause", "resume", "pause", "end")

		for _, action := range []string{"pause", "resume", "end"} {
			code, out, errOut = c.run("", "sale", action, sid)
			expectRun(t, code, out, errOut, 1)
			if want := fmt.Sprintf("server: sale %d is not running: it has not started or has ended\n", id); errOut != want {
				t.Fatalf("%s after the end: stderr %q, want %q", action, errOut, want)
			}
			code, out, errOut = c.run("", "sale", action, "999")
			expectRun(t, code, out, errOut, 1)
			if errOut != "server: sale 999 does not exist\n" {
				t.Fatalf("%s of no sale: stderr %q", action, errOut)
			}
		}
		code, out, errOut = c.run("", "sale", "show", "999")
		expectRun(t, code, out, errOut, 1)
		if errOut != "server: sale 999 does not exist\n" {
			t.Fatalf("show of no sale: stderr %q", errOut)
		}
		c.expectAudit(id, actor, "create", "pause", "resume", "pause", "end")
	})

	t.Run("refuses a database with migrations pending", func(t *testing.T) {
		c := newSaleCLI(t, bin)
		code, out, errOut := c.run("", "migrate", "down-to", "6")
		expectRun(t, code, out, errOut, 0)
		code, out, errOut = c.run(string(sale.EncodeDefinition(mugs(time.Now().Add(time.Hour)))), "sale", "apply", "-f", "-")
		expectRun(t, code, out, errOut, 1)
		if !strings.Contains(errOut, "migrations pending: run `server migrate up`") {
			t.Fatalf("apply on an old schema: stderr %q", errOut)
		}
	})
}

// saleCLI runs the server binary on a database of the test's own.
type saleCLI struct {
	t    *testing.T
	bin  string
	env  []string
	pool *pgxpool.Pool
	dir  string
}

func newSaleCLI(t *testing.T, bin string, env ...string) *saleCLI {
	url, pool := pgtest.NewPool(t)
	return &saleCLI{t: t, bin: bin, env: append([]string{"DATABASE_URL=" + url}, env...), pool: pool, dir: t.TempDir()}
}

func (c *saleCLI) run(stdin string, args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	return runServer(c.t, c.bin, stdin, c.env, args...)
}

// now is the database's clock, which decides when sales start.
func (c *saleCLI) now() time.Time {
	c.t.Helper()
	var now time.Time
	if err := c.pool.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		c.t.Fatal(err)
	}
	return now.UTC()
}

// write writes d to a file of the test's and returns its path.
func (c *saleCLI) write(name string, d sale.Definition) string {
	c.t.Helper()
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, sale.EncodeDefinition(d), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// listed is what `sale list -json -since since` lists, the whole list.
func (c *saleCLI) listed(since time.Time) []httpapi.AdminSale {
	c.t.Helper()
	code, out, errOut := c.run("", "sale", "list", "-json", "-since", since.Format(time.RFC3339))
	expectRun(c.t, code, out, errOut, 0)
	var listed struct {
		Sales     []httpapi.AdminSale `json:"sales"`
		NextSince *time.Time          `json:"next_since"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		c.t.Fatalf("-json printed %q: %v", out, err)
	}
	if listed.NextSince != nil {
		c.t.Fatalf("the whole list has a next_since: %s", out)
	}
	return listed.Sales
}

func (c *saleCLI) onlySale() int64 {
	c.t.Helper()
	if n := pgtest.Scalar(c.t, c.pool, "SELECT count(*) FROM sales"); n != 1 {
		c.t.Fatalf("%d sales, want 1", n)
	}
	return pgtest.Scalar(c.t, c.pool, "SELECT id FROM sales")
}

// expectAudit fails the test unless admin_actions holds exactly actions on
// sale id, in order, each by actor.
func (c *saleCLI) expectAudit(id int64, actor string, actions ...string) {
	c.t.Helper()
	rows, err := c.pool.Query(context.Background(), "SELECT actor, action FROM admin_actions WHERE sale_id = $1 ORDER BY id", id)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	var got, want bytes.Buffer
	for rows.Next() {
		var who, what string
		if err := rows.Scan(&who, &what); err != nil {
			c.t.Fatal(err)
		}
		fmt.Fprintf(&got, "%s %s\n", who, what)
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	for _, a := range actions {
		fmt.Fprintf(&want, "%s %s\n", actor, a)
	}
	if got.String() != want.String() {
		c.t.Fatalf("admin_actions of sale %d:\n%s\nwant:\n%s", id, got.String(), want.String())
	}
}

// mugs is a small sale of two items starting at start, for an hour.
func mugs(start time.Time) sale.Definition {
	return sale.Definition{
		StartsAt: start.UTC(), EndsAt: start.Add(time.Hour).UTC(), PerUserLimit: 2, HoldTTL: "5m",
		Items: []sale.ItemDefinition{
			{SKU: "MUG-RED", Name: "Red mug", Description: "Stoneware, 350 ml", Price: "12.50", Currency: "EUR",
				Units: 100, ImageURL: "https://shop.example/mug-red.jpg"},
			{SKU: "MUG-BLUE", Name: "Blue mug", Price: "12.50", Currency: "EUR", Units: 50},
		},
	}
}
