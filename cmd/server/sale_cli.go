package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/logging"
	"github.com/flashsale/flashsale/internal/sale"
)

// `server sale ...` defines and controls the sales a shop runs. It goes to
// the database with the same sale.Service as the admin API, not through
// the API: like `server migrate` it works wherever the binary and
// DATABASE_URL are, needs neither ADMIN_TOKEN nor a running server, and
// the service records its changes in admin_actions as it does the API's.

const saleUsageText = `Usage: server sale command [arguments]

Commands:
  apply -f FILE    create the sale FILE defines (JSON, as GET /admin/sales/ID's "definition"; - reads
                   stdin), or replace the defined sale that starts at its starts_at; applying the same
                   definition again changes nothing
  list [-since T] [-limit N] [-json]
                   the sales that end after T (RFC 3339, default now), N at most (default 50), as a
                   table or as the admin API's JSON
  show ID          sale ID's definition as JSON: edit it and apply it again
  pause ID         answer new checkouts of running sale ID with sale_paused
  resume ID        let checkouts of paused sale ID run again
  end ID           end running sale ID now

They act on DATABASE_URL (server settings as for serve; no server or ADMIN_TOKEN needed) once every
migration is applied, and record each change in admin_actions as "cli:" and the OS user's name.
Exit 0 done, 1 failed (an invalid definition prints each field at fault), 2 misused.
`

// defaultListedSales is the admin API's page too.
const defaultListedSales = 50

func saleCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return saleMisused(stderr, "sale takes a command")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, saleUsageText)
		return 0
	case "apply", "list", "show", "pause", "resume", "end":
	default:
		return saleMisused(stderr, fmt.Sprintf("unknown sale command %q", args[0]))
	}
	name := args[0]
	fs := flag.NewFlagSet("server sale "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("f", "", "")
	since := fs.String("since", "", "")
	limit := fs.Int("limit", defaultListedSales, "")
	asJSON := fs.Bool("json", false, "")
	err := fs.Parse(args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, saleUsageText)
		return 0
	case err != nil:
		return saleMisused(stderr, err.Error())
	}
	// Each command takes its own flags only.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	allowed := map[string][]string{"apply": {"f"}, "list": {"since", "limit", "json"}}[name]
	for _, a := range allowed {
		delete(set, a)
	}
	for f := range set {
		return saleMisused(stderr, fmt.Sprintf("sale %s takes no -%s", name, f))
	}

	var id int64
	switch name {
	case "apply":
		if *file == "" || fs.NArg() > 0 {
			return saleMisused(stderr, "sale apply takes -f FILE (- for stdin) and nothing else")
		}
	case "list":
		if fs.NArg() > 0 {
			return saleMisused(stderr, "sale list takes only -since, -limit and -json")
		}
		if *limit < 1 || *limit > sale.MaxListedSales {
			return saleMisused(stderr, fmt.Sprintf("-limit must be from 1 to %d", sale.MaxListedSales))
		}
	default:
		if fs.NArg() != 1 {
			return saleMisused(stderr, fmt.Sprintf("sale %s takes a sale id", name))
		}
		id, err = strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil || id < 1 {
			return saleMisused(stderr, fmt.Sprintf("a sale id is a positive integer, got %q", fs.Arg(0)))
		}
	}
	from := time.Now()
	if *since != "" {
		if from, err = time.Parse(time.RFC3339, *since); err != nil {
			return saleMisused(stderr, fmt.Sprintf("-since takes an RFC 3339 time such as 2026-12-24T18:00:00Z, got %q", *since))
		}
	}
	// The definition is read before connecting: a file that is not one
	// fails the same with the database down.
	var def sale.Definition
	if name == "apply" {
		if def, err = readDefinitionFile(*file, stdin); err != nil {
			return saleFailed(stderr, err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sales, closeSales, err := openSales(ctx, stderr)
	if err != nil {
		return failed(stderr, err)
	}
	defer closeSales()

	switch name {
	case "apply":
		err = saleApply(ctx, sales, def, stdout)
	case "list":
		err = saleList(ctx, sales, from, *limit, *asJSON, stdout, stderr)
	case "show":
		err = saleShow(ctx, sales, id, stdout)
	default:
		err = saleControl(ctx, sales, id, sale.Action(name), stdout)
	}
	if err != nil {
		return saleFailed(stderr, err)
	}
	return 0
}

func saleMisused(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "server: %s\n\n", msg)
	fmt.Fprint(stderr, saleUsageText)
	return 2
}

// saleFailed prints an invalid definition one field a line, so that an
// operator fixing a file of many items sees every fault at once.
func saleFailed(stderr io.Writer, err error) int {
	var bad *sale.DefinitionError
	if !errors.As(err, &bad) {
		return failed(stderr, err)
	}
	fmt.Fprintln(stderr, "server: invalid sale definition:")
	for _, f := range bad.Fields {
		field := f.Field
		if field == "" {
			field = "(document)"
		}
		fmt.Fprintf(stderr, "  %s: %s\n", field, f.Message)
	}
	return 1
}

func readDefinitionFile(path string, stdin io.Reader) (sale.Definition, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return sale.Definition{}, fmt.Errorf("read the definition: %w", err)
		}
		defer f.Close()
		r = f
	}
	return sale.ParseDefinition(r)
}

// openSales connects with the servers' settings and returns their sale
// service. It refuses a database with migrations pending rather than apply
// them: that is for `server migrate up` or a starting server, and a binary
// older than the database's servers must not act on a schema it does not
// know either way.
func openSales(ctx context.Context, stderr io.Writer) (*sale.Service, func(), error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, nil, err
	}
	pool, err := database.Open(ctx, cfg.DatabaseURL, 2, cfg.DBTimeout, database.Behind(database.Pooler(cfg.DBPooler)))
	if err != nil {
		return nil, nil, err
	}
	checkCtx, cancel := context.WithTimeout(ctx, cfg.DBTimeout)
	pending, err := database.Pending(checkCtx, pool)
	cancel()
	switch {
	case err != nil:
		pool.Close()
		return nil, nil, err
	case pending:
		pool.Close()
		return nil, nil, errors.New("the database has migrations pending: run `server migrate up` (or start a server) first")
	}
	// The service's own log lines (a sale defined, paused) repeat what the
	// command prints; its warnings go to stderr.
	sales := sale.NewService(pool, saleSettings(cfg), cfg.DBTimeout, logging.New(stderr, slog.LevelWarn))
	return sales, func() { sales.Close(); pool.Close() }, nil
}

// cliActor is who admin_actions records for this command: the OS user.
func cliActor() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		return "cli"
	}
	return "cli:" + name
}

func saleApply(ctx context.Context, sales *sale.Service, def sale.Definition, stdout io.Writer) error {
	s, applied, err := sales.ApplySale(ctx, cliActor(), def)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s sale %d: %s to %s, %d items, %d units\n", applied, s.ID,
		s.StartsAt.UTC().Format(time.RFC3339), s.EndsAt.UTC().Format(time.RFC3339), s.Items, s.UnitsTotal)
	return nil
}

func saleList(ctx context.Context, sales *sale.Service, since time.Time, limit int, asJSON bool, stdout, stderr io.Writer) error {
	list, err := sales.ListSales(ctx, since, limit)
	if err != nil {
		return err
	}
	now := time.Now()
	var next *time.Time
	if len(list) == limit {
		t := list[len(list)-1].EndsAt.UTC()
		next = &t
	}
	if asJSON {
		out := struct {
			Sales     []httpapi.AdminSale `json:"sales"`
			NextSince *time.Time          `json:"next_since"`
		}{Sales: make([]httpapi.AdminSale, len(list)), NextSince: next}
		for i, sum := range list {
			out.Sales[i] = httpapi.NewAdminSale(sum, nil, now)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSTARTS AT\tENDS AT\tITEMS\tSOLD/UNITS\tDEFINED BY")
	for _, sum := range list {
		l := httpapi.NewAdminSale(sum, nil, now)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d/%d\t%s\n", l.ID, l.Status, l.StartsAt.Format(time.RFC3339),
			l.EndsAt.Format(time.RFC3339), l.Items, l.UnitsSold, l.UnitsTotal, l.DefinedBy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != nil {
		// On stderr, so that the table stays a table for a pipe.
		fmt.Fprintf(stderr, "more: server sale list -since %s -limit %d\n", next.Format(time.RFC3339), limit)
	}
	return nil
}

func saleShow(ctx context.Context, sales *sale.Service, id int64, stdout io.Writer) error {
	sum, items, err := sales.SaleWithItems(ctx, id)
	switch {
	case errors.Is(err, sale.ErrSaleNotFound):
		return fmt.Errorf("sale %d does not exist", id)
	case err != nil:
		return err
	}
	_, err = stdout.Write(sale.EncodeDefinition(sale.DefinitionOf(sum.Sale, items)))
	return err
}

func saleControl(ctx context.Context, sales *sale.Service, id int64, action sale.Action, stdout io.Writer) error {
	_, changed, err := sales.ControlSale(ctx, cliActor(), id, action)
	switch {
	case errors.Is(err, sale.ErrSaleNotFound):
		return fmt.Errorf("sale %d does not exist", id)
	case errors.Is(err, sale.ErrSaleNotRunning):
		return fmt.Errorf("sale %d is not running: it has not started or has ended", id)
	case err != nil:
		return err
	}
	done := map[sale.Action]string{sale.Pause: "paused", sale.Resume: "resumed", sale.End: "ended"}[action]
	switch {
	case changed:
		fmt.Fprintf(stdout, "%s sale %d\n", done, id)
	case action == sale.Resume:
		fmt.Fprintf(stdout, "sale %d was not paused\n", id)
	default:
		fmt.Fprintf(stdout, "sale %d was already %s\n", id, done)
	}
	return nil
}
