package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/migrations"
)

// The operator's commands, run as an operator runs them: the built binary,
// its exit code and what it prints.
func TestCommands(t *testing.T) {
	bin := buildServer(t)
	run := func(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		return runServer(t, bin, "", env, args...)
	}
	expect := expectRun
	migrationFiles, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(migrationFiles) == 0 {
		t.Fatalf("embedded migrations: %v %v", migrationFiles, err)
	}

	t.Run("help", func(t *testing.T) {
		code, out, errOut := run(t, nil, "-h")
		expect(t, code, out, errOut, 0, "migrate status", "migrate down-to N", "healthcheck", "METRICS_ADDR", "DATABASE_URL",
			"sale apply -f FILE", "sale list", "sale show ID", "sale pause ID", "sale resume ID", "sale end ID")
	})
	t.Run("version", func(t *testing.T) {
		code, out, errOut := run(t, nil, "-version")
		expect(t, code, out, errOut, 0)
		if out != "v-test-7\n" {
			t.Fatalf("-version printed %q", out)
		}
	})
	t.Run("misuse", func(t *testing.T) {
		for _, args := range [][]string{{"bogus"}, {"migrate"}, {"migrate", "down-to", "-1"}, {"-nope"}} {
			code, out, errOut := run(t, nil, args...)
			if code != 2 || !strings.Contains(errOut, "Usage: server") {
				t.Errorf("%v: exit %d, want 2 with the usage on stderr\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
			}
		}
	})
	t.Run("migrate", func(t *testing.T) {
		db := []string{"DATABASE_URL=" + pgtest.New(t)} // migrated already
		state := func(want string) {
			t.Helper()
			code, out, errOut := run(t, db, "migrate", "status")
			expect(t, code, out, errOut, 0, "VERSION")
			for _, f := range migrationFiles {
				line := lineWith(out, f)
				if !strings.Contains(line, " "+want+" ") {
					t.Fatalf("%s is not %s:\n%s", f, want, out)
				}
			}
		}
		state("applied")
		code, out, errOut := run(t, db, "migrate", "up")
		expect(t, code, out, errOut, 0, "nothing to do")
		code, out, errOut = run(t, db, "migrate", "down-to", "0")
		expect(t, code, out, errOut, 0, "OK    down "+migrationFiles[0])
		state("pending")
		code, out, errOut = run(t, db, "migrate", "up")
		expect(t, code, out, errOut, 0, "OK    up "+migrationFiles[len(migrationFiles)-1])
		state("applied")
	})
	t.Run("migrate through DATABASE_MIGRATION_URL", func(t *testing.T) {
		// DATABASE_URL names a pooler nobody runs: the command must not
		// need it.
		env := []string{"DATABASE_URL=postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1",
			"DB_POOLER=transaction", "DATABASE_MIGRATION_URL=" + pgtest.New(t)}
		code, out, errOut := run(t, env, "migrate", "up")
		expect(t, code, out, errOut, 0, "nothing to do")
		code, out, errOut = run(t, env[:2], "migrate", "status")
		expect(t, code, out, errOut, 2)
		if !strings.Contains(errOut, "DATABASE_MIGRATION_URL") {
			t.Fatalf("DB_POOLER=transaction without DATABASE_MIGRATION_URL: %q", errOut)
		}
	})
	t.Run("settings errors", func(t *testing.T) {
		// One line naming the variable, the value and what it takes; exit
		// 2, before anything connects (the database here is nowhere).
		nowhere := "DATABASE_URL=postgres://postgres@127.0.0.1:1/nowhere?connect_timeout=1"
		for _, c := range []struct{ env, want string }{
			{"SALE_DURATION=90", "server: SALE_DURATION=90 is not a duration: a number with a unit, such as 90s, 15m or 1h (units ns, us, ms, s, m, h)\n"},
			{"DB_MAX_CONNS=lots", "server: DB_MAX_CONNS=lots is not a whole number, such as 10\n"},
			{"LOG_LEVEL=verbose", "server: LOG_LEVEL=verbose is not a level: want one of debug, info, warn, error\n"},
			{"GOGC=lots", "server: GOGC=lots is not a percentage: want a whole number from 1, such as 100 or 400 (how much the heap grows between collections), or off\n"},
		} {
			for _, args := range [][]string{nil, {"config"}, {"migrate", "status"}} {
				code, out, errOut := run(t, []string{nowhere, c.env}, args...)
				if code != 2 || errOut != c.want || out != "" {
					t.Errorf("%s server %v: exit %d, stderr %q, stdout %q; want exit 2 and %q", c.env, args, code, errOut, out, c.want)
				}
			}
		}
		// The Go runtime reads GOMEMLIMIT before main and stops a process
		// whose value it cannot read, with its own message and exit 2.
		code, _, errOut := run(t, []string{nowhere, "GOMEMLIMIT=lots"})
		if code != 2 || !strings.Contains(errOut, "malformed GOMEMLIMIT") {
			t.Errorf("GOMEMLIMIT=lots: exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("config", func(t *testing.T) {
		code, out, errOut := run(t, []string{"SALE_UNITS=5", "SALE_ITEMS=5", "HOLD_TTL=", "PPROF_ADDR=",
			"DATABASE_URL=postgres://app:s3cret@db:5432/flashsale", "AUTH_JWT_SECRET=" + strings.Repeat("s3cret", 6)}, "config")
		expect(t, code, out, errOut, 0)
		for _, want := range [][]string{
			{"SETTING", "VALUE", "SOURCE"},
			{"SALE_UNITS", "5", "environment"},
			{"HOLD_TTL", "10m", "default"},
			{"PPROF_ADDR", "(off)", "default"},
			{"DATABASE_URL", "postgres://app:xxxxx@db:5432/flashsale", "environment"},
			{"AUTH_JWT_SECRET", "(set, hidden)", "environment"},
		} {
			if got := strings.Fields(lineWith(out, want[0]+" ")); !slices.Equal(got, strings.Fields(strings.Join(want, " "))) {
				t.Errorf("line %q, want %q", got, want)
			}
		}
		if strings.Contains(out, "s3cret") {
			t.Errorf("config shows a secret:\n%s", out)
		}
	})
	t.Run("start-up log", func(t *testing.T) {
		// On every interface: the URL to open, with the port bound, and a
		// warning.
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+pgtest.New(t), "HTTP_ADDR=:0", "LOG_LEVEL=info")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		// A server that never logs "listening" ends the scan below.
		stopper := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
		defer stopper.Stop()
		var warned bool
		var listening struct{ URL string }
		lines := bufio.NewScanner(stderr)
		for listening.URL == "" && lines.Scan() {
			line := lines.Text()
			warned = warned || strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "every network interface")
			if strings.Contains(line, `"msg":"listening"`) {
				if err := json.Unmarshal([]byte(line), &listening); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !warned || !strings.HasPrefix(listening.URL, "http://127.0.0.1:") || strings.HasSuffix(listening.URL, ":0/") {
			t.Fatalf("warned %v, url %q", warned, listening.URL)
		}
		apitest.GetOK(t, listening.URL+"healthz")
		_ = cmd.Process.Signal(syscall.SIGTERM)
	})
	t.Run("healthcheck", func(t *testing.T) {
		u, err := url.Parse(apitest.Start(t, apitest.Options{}).URL)
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := run(t, []string{"HTTP_ADDR=" + u.Host}, "healthcheck")
		expect(t, code, out, errOut, 0, `"ready"`)

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		code, out, errOut = run(t, []string{"HTTP_ADDR=" + closed}, "healthcheck")
		expect(t, code, out, errOut, 1)
		if !strings.Contains(errOut, "connection refused") {
			t.Fatalf("healthcheck of a closed port says %q", errOut)
		}
	})
}

// buildServer builds the server binary for a test, as an operator gets it.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v-test-7", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runServer returns the exit code and output of bin args with env added
// and stdin as its input.
func runServer(t *testing.T, bin, stdin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...) // the last value of a variable wins
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// expectRun fails the test unless a run exited wantCode with every one of
// wantOut on stdout.
func expectRun(t *testing.T, code int, stdout, stderr string, wantCode int, wantOut ...string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, stdout, stderr)
	}
	for _, w := range wantOut {
		if !strings.Contains(stdout, w) {
			t.Fatalf("stdout lacks %q:\n%s\nstderr:\n%s", w, stdout, stderr)
		}
	}
}

func lineWith(text, s string) string {
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

func TestDialAddr(t *testing.T) {
	for listen, want := range map[string]string{
		":8080":          "127.0.0.1:8080",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		"[::]:8080":      "[::1]:8080",
		"10.1.2.3:8080":  "10.1.2.3:8080",
		"localhost:8080": "localhost:8080",
	} {
		if got := dialAddr(listen); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", listen, got, want)
		}
	}
}
