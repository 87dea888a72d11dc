package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/migrations"
)

// The operator's commands. A few commands and two flags are what the
// standard library's flag package is for; a command framework would add a
// dependency and change nothing an operator sees.

const usageText = `Usage: server [-version] [command]

Commands:
  serve              run the HTTP API (what the server does without a command)
  migrate status     list the migrations and when each was applied
  migrate up         apply the pending migrations (serve does this at start)
  migrate down-to N  roll back every migration above version N (0: all); stop the servers first
  healthcheck        GET /readyz on HTTP_ADDR: exit 0 when it answers 200 within DB_TIMEOUT+1s, else 1
  config             print the settings in effect and where each comes from (secrets masked)
  sale apply -f FILE define or replace a sale from a JSON file (- reads stdin); the same file twice changes nothing
  sale list          list the sales that have not ended: status, units sold, who defined them
  sale show ID       print sale ID's definition as a file for sale apply
  sale pause ID      answer new checkouts of running sale ID with sale_paused
  sale resume ID     let checkouts of paused sale ID run again
  sale end ID        end running sale ID now
                     (these act on DATABASE_URL, no server needed; server sale -h says more)

Flags:
  -h, -help   print this help
  -version    print the version

Settings, from the environment (an empty value counts as unset; docs/operating.md says what each means):
`

// command runs the command args name and returns the process's exit code:
// 0 done, 1 failed, 2 misused.
func command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // help and errors are printed below, help to stdout
	showVersion := fs.Bool("version", false, "print the version")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return 0
	case err != nil:
		return misused(stderr, err.Error())
	case *showVersion:
		fmt.Fprintln(stdout, version)
		return 0
	}
	args = fs.Args()
	if len(args) == 0 {
		return serve(stderr)
	}
	switch args[0] {
	case "serve":
		if len(args) > 1 {
			return misused(stderr, "serve takes no arguments")
		}
		return serve(stderr)
	case "migrate":
		return migrateCommand(args[1:], stdout, stderr)
	case "sale":
		return saleCommand(args[1:], os.Stdin, stdout, stderr)
	case "healthcheck":
		if len(args) > 1 {
			return misused(stderr, "healthcheck takes no arguments")
		}
		return healthcheck(stdout, stderr)
	case "config":
		if len(args) > 1 {
			return misused(stderr, "config takes no arguments")
		}
		return printConfig(stdout, stderr)
	case "help":
		printUsage(stdout)
		return 0
	}
	return misused(stderr, fmt.Sprintf("unknown command %q", args[0]))
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usageText)
	settings, err := config.Settings()
	if err != nil {
		fmt.Fprintf(w, "  (%v)\n", err)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range settings {
		def := s.Default
		if def == "" {
			def = "(off)"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", s.Name, def)
	}
	tw.Flush()
}

func misused(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "server: %s\n\n", msg)
	printUsage(stderr)
	return 2
}

// misconfigured reports a setting that cannot work: one line, exit 2.
func misconfigured(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "server: %v\n", err)
	return 2
}

// printConfig shows what the server would run with, checked as serve
// checks it: an operator's first question at 3 a.m.
func printConfig(stdout, stderr io.Writer) int {
	if _, err := config.Load(); err != nil {
		return misconfigured(stderr, err)
	}
	settings, err := config.Effective()
	if err != nil {
		return failed(stderr, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
	for _, s := range settings {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, cmp.Or(s.Value, "(off)"), s.Source)
	}
	tw.Flush()
	return 0
}

func failed(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "server: %v\n", err)
	return 1
}

// migrateCommand runs migrate status|up|down-to N against
// DATABASE_MIGRATION_URL, or DATABASE_URL when that is unset.
func migrateCommand(args []string, stdout, stderr io.Writer) int {
	var downTo int64
	switch {
	case len(args) == 1 && (args[0] == "status" || args[0] == "up"):
	case len(args) == 2 && args[0] == "down-to":
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || n < 0 {
			return misused(stderr, fmt.Sprintf("down-to takes a version number (0 or more), got %q", args[1]))
		}
		downTo = n
	default:
		return misused(stderr, "migrate takes status, up or down-to N")
	}
	cfg, err := config.Load()
	if err != nil {
		return misconfigured(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Never through a transaction pooler (config.Load makes sure): the
	// migration lock lives as long as a session.
	pool, err := database.Open(ctx, cfg.MigrationURL(), 2, cfg.DBTimeout)
	if err != nil {
		return failed(stderr, err)
	}
	defer pool.Close()

	var results []*goose.MigrationResult
	switch args[0] {
	case "status":
		st, err := database.Status(ctx, pool)
		if err != nil {
			return failed(stderr, err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tMIGRATION")
		for _, s := range st {
			at := "-"
			if s.State == goose.StateApplied {
				at = s.AppliedAt.UTC().Format(time.DateTime + " MST")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, at, migrationName(s.Source))
		}
		tw.Flush()
		return 0
	case "up":
		// The server refuses a database it cannot run on before migrating
		// it; so does this.
		if err := database.CheckServer(ctx, pool); err != nil {
			return failed(stderr, err)
		}
		results, err = database.Up(ctx, pool)
	case "down-to":
		results, err = database.DownTo(ctx, pool, downTo)
	}
	for _, r := range results {
		if r.Source.Path == "" { // a Go migration: goose's line would name it "."
			named, src := *r, *r.Source
			src.Path = migrationName(&src)
			named.Source = &src
			r = &named
		}
		fmt.Fprintln(stdout, r)
	}
	if err != nil {
		return failed(stderr, err)
	}
	if len(results) == 0 {
		fmt.Fprintln(stdout, "nothing to do")
	}
	return 0
}

// healthcheck asks this host's server whether it is ready, for container
// health checks in an image without a shell or curl.
func healthcheck(stdout, stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return misconfigured(stderr, err)
	}
	url := "http://" + dialAddr(cfg.HTTPAddr) + "/readyz"
	// readyz answers within DB_TIMEOUT; a second more for the connection.
	client := &http.Client{
		Timeout:   cfg.DBTimeout + time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	resp, err := client.Get(url)
	if err != nil {
		return failed(stderr, fmt.Errorf("healthcheck: %w", err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return failed(stderr, fmt.Errorf("healthcheck: %s answered %s: %s", url, resp.Status, body))
	}
	fmt.Fprintf(stdout, "%s", body)
	return 0
}

// openURL is the address a person on this host opens in a browser: the
// listen address as dialAddr reaches it, with the port bound.
func openURL(listen string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(dialAddr(listen))
	port := "0"
	if a, ok := bound.(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// logListening warns when the API listens on every interface, HTTP_ADDR's
// default: right in a container or behind a firewall, a surprise on a
// laptop on a shared network.
func logListening(log *slog.Logger, listen string, bound net.Addr) {
	host, _, _ := net.SplitHostPort(listen) // config.Load has checked it
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		_, port, _ := net.SplitHostPort(bound.String())
		log.Warn("listening on every network interface; set HTTP_ADDR=127.0.0.1:"+port+" to keep the API to this host",
			"addr", listen)
	}
}

// dialAddr turns a listen address into one to connect to: a server
// listening on every interface (":8080", "0.0.0.0:8080", "[::]:8080") is
// asked on loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // config.Load has checked it; not reached
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.To4() != nil && ip.IsUnspecified()):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// migrationName is a migration's file, or what a Go migration does.
func migrationName(src *goose.Source) string {
	if src.Path != "" {
		return src.Path
	}
	return fmt.Sprintf("%05d River's schema v%d (Go)", src.Version, migrations.RiverVersion)
}
