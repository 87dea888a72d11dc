package main

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
		expect(t, code, out, errOut, 1)
		if !strings.Contains(errOut, "DATABASE_MIGRATION_URL") {
			t.Fatalf("DB_POOLER=transaction without DATABASE_MIGRATION_URL: %q", errOut)
		}
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
