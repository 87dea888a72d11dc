//go:build autofailover

package failover_test

// make test-failover: pg_auto_failover (Debian's postgresql-15-auto-failover)
// runs a monitor and two nodes with the tuned timeouts of docs/operating.md
// (Failover); a herd shops through the server while the primary's node is
// lost, and the monitor promotes the secondary. Not in make test: it takes
// about a minute on top of the package install.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/failover"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/replica"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

const pgCtl = "/usr/lib/postgresql/15/bin/pg_ctl"

// Monitor settings (pgautofailover.*) and the node setting of
// docs/operating.md: the defaults leave the sale without a primary for
// about 50 s, mostly primary_demote_timeout (30 s).
var monitorTuning = map[string]string{
	"health_check_period":               "1000",
	"health_check_retry_delay":          "500",
	"health_check_timeout":              "1000",
	"node_considered_unhealthy_timeout": "3000",
	"primary_demote_timeout":            "8000",
}

type autoctl struct {
	t    *testing.T
	root string
	cred *syscall.Credential
	env  []string
}

func (a *autoctl) command(args ...string) *exec.Cmd {
	cmd := exec.Command("pg_autoctl", args...)
	cmd.Env = a.env
	cmd.Dir = a.root
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
	return cmd
}

func (a *autoctl) run(args ...string) {
	a.t.Helper()
	if out, err := a.command(args...).CombinedOutput(); err != nil {
		a.t.Fatalf("pg_autoctl %v: %v\n%s", args, err, out)
	}
}

// service runs pg_autoctl run for pgdata until the test ends; kill ends
// every process of it (the keeper, its PostgreSQL and that one's children)
// with SIGKILL.
func (a *autoctl) service(pgdata string) (kill func()) {
	a.t.Helper()
	log, err := os.Create(pgdata + ".log")
	if err != nil {
		a.t.Fatal(err)
	}
	cmd := a.command("run", "--pgdata", pgdata)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("pg_autoctl run: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	kill = func() {
		replica.KillTree(cmd.Process.Pid)
		<-exited
	}
	a.t.Cleanup(kill)
	return kill
}

func queryRows(ctx context.Context, url, sql string) ([][]string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func TestAutoFailover(t *testing.T) {
	began := time.Now()
	if _, err := exec.LookPath("pg_autoctl"); err != nil {
		t.Fatalf("pg_autoctl not found: install Debian's postgresql-15-auto-failover (make test-failover does): %v", err)
	}
	if _, err := os.Stat(pgCtl); err != nil {
		t.Fatalf("PostgreSQL 15 server binaries are needed (Debian's postgresql-15): %v", err)
	}
	a := &autoctl{t: t, cred: replica.Credential(t)}
	root, err := os.MkdirTemp("", "flashsale-autofailover-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	if a.cred != nil {
		if err := os.Chown(root, int(a.cred.Uid), int(a.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	a.root = root
	// pg_autoctl keeps its state under XDG directories: this run's own.
	a.env = append(os.Environ(), "XDG_CONFIG_HOME="+root+"/config", "XDG_DATA_HOME="+root+"/data",
		"XDG_RUNTIME_DIR="+root+"/run", "PGHOST=", "LC_ALL=C.UTF-8", "LANG=C.UTF-8")

	ctx := context.Background()
	monPort := replica.FreePort(t)
	mon := filepath.Join(root, "monitor")
	a.run("create", "monitor", "--pgdata", mon, "--pgport", strconv.Itoa(monPort), "--hostname", "127.0.0.1",
		"--auth", "trust", "--no-ssl", "--pgctl", pgCtl)
	a.service(mon)
	monAdmin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pg_auto_failover?sslmode=disable", monPort)
	testutil.Poll(t, 30*time.Second, func() error { _, err := queryRows(ctx, monAdmin, "SELECT 1"); return err })
	for k, v := range monitorTuning {
		if _, err := queryRows(ctx, monAdmin, fmt.Sprintf("ALTER SYSTEM SET pgautofailover.%s = %s", k, v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := queryRows(ctx, monAdmin, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	monitorURI := fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", monPort)

	type node struct {
		name, pgdata string
		port         int
		kill         func()
	}
	nodes := []*node{{name: "node1"}, {name: "node2"}}
	for _, n := range nodes {
		n.pgdata, n.port = filepath.Join(root, n.name), replica.FreePort(t)
		a.run("create", "postgres", "--pgdata", n.pgdata, "--pgport", strconv.Itoa(n.port), "--hostname", "127.0.0.1",
			"--auth", "trust", "--no-ssl", "--pgctl", pgCtl, "--dbname", "flashsale", "--name", n.name,
			"--monitor", monitorURI)
		a.run("config", "set", "--pgdata", n.pgdata, "timeout.network_partition_timeout", "5")
		n.kill = a.service(n.pgdata)
	}
	states := func() (map[int]string, error) {
		rows, err := queryRows(ctx, monitorURI,
			"SELECT nodeport, current_group_state, assigned_group_state FROM pgautofailover.current_state('default')")
		if err != nil {
			return nil, err
		}
		out := map[int]string{}
		for _, r := range rows {
			p, _ := strconv.Atoi(r[0])
			if r[1] == r[2] {
				out[p] = r[1]
			} else {
				out[p] = r[1] + "->" + r[2]
			}
		}
		return out, nil
	}
	var primary, secondary *node
	testutil.Poll(t, 60*time.Second, func() error {
		st, err := states()
		if err != nil {
			return err
		}
		primary, secondary = nil, nil
		for _, n := range nodes {
			switch st[n.port] {
			case "primary":
				primary = n
			case "secondary":
				secondary = n
			}
		}
		if primary == nil || secondary == nil {
			return fmt.Errorf("nodes %v, want a primary and a secondary", st)
		}
		return nil
	})
	setUp := time.Since(began)
	nodeURL := func(n *node) string {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/flashsale?sslmode=disable", n.port)
	}
	migrate(t, nodeURL(primary))
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/flashsale?sslmode=disable&target_session_attrs=read-write",
		primary.port, secondary.port)
	settings := herdSettings
	srv := apitest.Start(t, apitest.Options{DBURL: dbURL, DBTimeout: time.Second, Settings: &settings})
	saleID := apitest.CurrentSaleID(t, srv.URL)

	h := &failover.Herd{Base: srv.URL, Clients: 12, Users: 5000, HotUsers: 20, Items: settings.Items}
	herdCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { h.Run(herdCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	start := time.Now()
	testutil.Poll(t, 30*time.Second, func() error {
		return atLeast("201s before the failover", h.Count(http.StatusCreated, start), 200)
	})

	lost := time.Now()
	primary.kill()
	testutil.Poll(t, 120*time.Second, func() error {
		o := h.Outage(lost)
		if !o.Recovered {
			st, _ := states()
			return fmt.Errorf("no 201 since the loss of the primary; nodes %v", st)
		}
		return atLeast("201s after recovery", h.Count(http.StatusCreated, lost.Add(o.FirstCreated)), 100)
	})
	testutil.Poll(t, 30*time.Second, func() error {
		if _, ok := h.BackToFull(lost); !ok {
			return errWait
		}
		return nil
	})
	stop()
	<-done
	o := h.Outage(lost)
	full, _ := h.BackToFull(lost)

	rep, err := failover.Verify(ctx, nodeURL(secondary), saleID, h)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("pg_auto_failover (tuned): set-up %.1fs; %v; %v; full throughput again at +%.2fs; test %.1fs\n",
		setUp.Seconds(), rep, o, full.Seconds(), time.Since(began).Seconds())
	if rep.Missing() != 0 || rep.Oversold != 0 || rep.CapBreaches != 0 {
		t.Errorf("after the failover: %v", rep)
	}
	if rep.Holds == 0 || rep.Purchases == 0 || rep.Refusals == 0 {
		t.Errorf("the herd got no hold, purchase or refusal to check: %v", rep)
	}
	if len(h.Unexpected) > 0 {
		t.Errorf("%d unexpected answers, first: %s", len(h.Unexpected), h.Unexpected[0])
	}
	apitest.Expect(t, "readyz after the failover", apitest.Get(t, srv.URL+"/readyz"), http.StatusOK, "")
}
