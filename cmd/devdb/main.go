// Command devdb makes sure a PostgreSQL server answers for a development
// DATABASE_URL and that its database exists, so that a Makefile can write
//
//	DATABASE_URL=$$(go run ./cmd/devdb ensure)
//
// Usage:
//
//	devdb ensure [-url URL]  # URL defaults to $DATABASE_URL, else the local default
//	devdb stop               # stop the private cluster that ensure started
//
// ensure tries, in order: a server already answering at the URL; a Docker
// engine (docker compose up -d db); local PostgreSQL server binaries, with
// which it runs a private trust-auth cluster under <repo root>/.pgdata. It
// never substitutes anything that is not PostgreSQL. Only the URL is written
// to stdout; every diagnostic goes to stderr.
//
// DEVDB_PG_BIN_DIRS, when set, replaces the /usr/lib/postgresql/*/bin glob
// with a colon-separated list of directories (empty: search none besides PATH).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale/internal/database"
)

const defaultURL = "postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable"

func main() {
	if err := run(os.Args[1:]); err != nil {
		msg := err.Error()
		if !strings.HasSuffix(msg, ".") { // the messages are meant to read as sentences
			msg += "."
		}
		fmt.Fprintln(os.Stderr, "devdb: "+msg)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: devdb ensure [-url URL] | devdb stop")
	}
	switch args[0] {
	case "ensure":
		fs := flag.NewFlagSet("ensure", flag.ContinueOnError)
		url := fs.String("url", envOr("DATABASE_URL", defaultURL), "PostgreSQL URL whose server and database must exist")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := ensure(*url); err != nil {
			return err
		}
		fmt.Println(*url)
		return nil
	case "stop":
		return stop()
	default:
		return fmt.Errorf("unknown command %q; usage: devdb ensure [-url URL] | devdb stop", args[0])
	}
}

func ensure(url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	local := isLocalHost(cfg.Host)

	ctx := context.Background()
	conn, err := connectMaintenance(ctx, cfg)
	if err == nil {
		defer conn.Close(ctx)
		return createDatabase(ctx, conn, url, cfg)
	}
	// A server that answers with an error (bad role, bad password) is already
	// running: starting another one on the same port could only make it worse.
	if serverAnswered(err) {
		return fmt.Errorf("PostgreSQL at %s answered but refused the connection: %w", addr, err)
	}
	var attempts []string
	if local && dockerRunning() {
		fmt.Fprintf(os.Stderr, "devdb: no PostgreSQL answers at %s, starting one with docker compose up -d db\n", addr)
		err := startDocker(cfg.Port, cfg.Password)
		if err == nil {
			return waitAndCreate(ctx, url, cfg, addr, 60*time.Second)
		}
		// Compose may be missing or the port taken; local binaries can still help.
		fmt.Fprintf(os.Stderr, "devdb: %v\n", err)
		attempts = append(attempts, err.Error())
	} else if local {
		attempts = append(attempts, "no Docker engine is running")
	}

	bin, found := findPGBin()
	switch {
	case found && local:
		if err := startPrivateCluster(bin, cfg); err != nil {
			return err
		}
		return waitAndCreate(ctx, url, cfg, addr, 15*time.Second)
	case !local:
		return fmt.Errorf("no PostgreSQL answers at %s, and devdb only starts a server (Docker or a private cluster) for a local host (127.0.0.1, localhost, ::1): start that server or set DATABASE_URL to a reachable one", addr)
	default:
		return fmt.Errorf("no PostgreSQL answers at %s, %s and no PostgreSQL server binaries (initdb, pg_ctl) were found: install PostgreSQL (Debian: apt-get install postgresql) or Docker, or set DATABASE_URL to a reachable server", addr, strings.Join(attempts, ", "))
	}
}

// connectMaintenance connects to the "postgres" database because the target
// database may not exist yet; template1 covers servers where it was dropped.
func connectMaintenance(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	var err error
	for _, db := range []string{"postgres", "template1"} {
		c := cfg.Copy()
		c.Database = db
		c.ConnectTimeout = 2 * time.Second
		var conn *pgx.Conn
		conn, err = pgx.ConnectConfig(ctx, c)
		if err == nil {
			return conn, nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
			break
		}
	}
	return nil, err
}

// serverAnswered reports whether err came from a live server, as opposed to
// nobody listening. 57P03 (starting up) counts as not answering yet.
func serverAnswered(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code != "57P03"
}

func waitAndCreate(ctx context.Context, url string, cfg *pgx.ConnConfig, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := connectMaintenance(ctx, cfg)
		if err == nil {
			defer conn.Close(ctx)
			return createDatabase(ctx, conn, url, cfg)
		}
		if serverAnswered(err) || time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL at %s did not accept connections within %s: %w", addr, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// createDatabase creates url's database unless it exists; conn is a
// connection to a maintenance database of the same server.
func createDatabase(ctx context.Context, conn *pgx.Conn, url string, cfg *pgx.ConnConfig) error {
	name := cfg.Database
	if name == "" { // the server falls back to the user name, so must we
		name = cfg.User
	}
	exists := func() (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
		if err != nil {
			return false, fmt.Errorf("check whether database %q exists: %w", name, err)
		}
		return ok, nil
	}
	if ok, err := exists(); err != nil || ok {
		return err
	}
	admin := database.ReplaceDatabase(url, cfg.Database, conn.Config().Database)
	_, err := database.CreateDatabase(ctx, admin, name, "")
	// A concurrent caller that wins the race makes ours fail with
	// duplicate_database (42P04) or, when both pass the catalog check at
	// once, unique_violation (23505) on pg_database's name index.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		if ok, _ := exists(); ok {
			return nil
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "devdb: created database %q\n", name)
	return nil
}

func dockerRunning() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info").Run() == nil
}

// startDocker starts docker-compose.yml's db with the URL's password: that
// database takes none without one (it is not a trust-auth server).
func startDocker(port uint16, password string) error {
	if password == "" {
		return errors.New("docker-compose.yml's database needs the password in DATABASE_URL " +
			"(postgres://postgres:PASSWORD@...; its default for local use is flashsale)")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("docker", "compose", "up", "-d", "db")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"DEVDB_PORT="+strconv.Itoa(int(port)), // host port published by docker-compose.yml
		"POSTGRES_PASSWORD="+password)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker compose up -d db in %s failed: %w", root, err)
	}
	return nil
}

type pgBin struct{ initdb, pgCtl string }

// findPGBin prefers PATH, then Debian's versioned directories, newest first,
// so that the binaries a user chose win over whatever the distribution ships.
func findPGBin() (pgBin, bool) {
	initdb, err1 := exec.LookPath("initdb")
	pgCtl, err2 := exec.LookPath("pg_ctl")
	if err1 == nil && err2 == nil {
		return pgBin{initdb, pgCtl}, true
	}
	var dirs []string
	if v, ok := os.LookupEnv("DEVDB_PG_BIN_DIRS"); ok {
		dirs = filepath.SplitList(v)
	} else {
		dirs, _ = filepath.Glob("/usr/lib/postgresql/*/bin")
		sortByVersionDesc(dirs)
	}
	for _, d := range dirs {
		b := pgBin{filepath.Join(d, "initdb"), filepath.Join(d, "pg_ctl")}
		if isExecutable(b.initdb) && isExecutable(b.pgCtl) {
			return b, true
		}
	}
	return pgBin{}, false
}

// sortByVersionDesc orders .../<version>/bin numerically, so 10 sorts above 9.
func sortByVersionDesc(dirs []string) {
	ver := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	sort.SliceStable(dirs, func(i, j int) bool { return ver(dirs[i]) > ver(dirs[j]) })
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func startPrivateCluster(bin pgBin, cfg *pgx.ConnConfig) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := ensureGitignore(filepath.Join(root, ".gitignore")); err != nil {
		return err
	}
	base := filepath.Join(root, ".pgdata")
	data := filepath.Join(base, "data")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", base, err)
	}
	asUser, err := prepareOwner(base)
	if err != nil {
		return err
	}

	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "devdb: no PostgreSQL answers at %s, creating a private cluster in %s\n", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), data)
		// C locale: the host's LANG may name a locale that is not installed.
		if err := runPG(asUser, base, bin.initdb, "-D", data, "-U", cfg.User, "--auth=trust", "--encoding=UTF8", "--locale=C"); err != nil {
			return fmt.Errorf("initdb in %s: %w", data, err)
		}
	}

	logFile := filepath.Join(base, "log")
	fmt.Fprintf(os.Stderr, "devdb: starting the private cluster on %s port %d (log: %s)\n", cfg.Host, cfg.Port, logFile)
	// pg_ctl hands -o to a shell, hence the quoting.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=%s", cfg.Port, shellQuote(base), shellQuote(cfg.Host))
	if err := runPG(asUser, base, bin.pgCtl, "-D", data, "-l", logFile, "-o", opts, "-w", "start"); err != nil {
		return fmt.Errorf("pg_ctl start for %s failed (see %s): %w", data, logFile, err)
	}
	return nil
}

// prepareOwner returns the user to run initdb and pg_ctl as: they refuse to
// run as root, so root hands the cluster directory to the postgres user.
func prepareOwner(dir string) (string, error) {
	if os.Geteuid() != 0 {
		return "", nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return "", errors.New("running as root, but initdb and pg_ctl refuse to run as root and there is no \"postgres\" system user to run them as: create one (useradd --system postgres) or run devdb as an unprivileged user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return "", fmt.Errorf("hand %s to the postgres user: %w", dir, err)
	}
	return "postgres", nil
}

// runPG runs a server tool, through runuser when asUser is set. Its output
// goes to stderr because stdout is reserved for the URL.
func runPG(asUser, dir, name string, args ...string) error {
	if asUser != "" {
		args = append([]string{"-u", asUser, "--", name}, args...)
		name = "runuser"
		// sbin is often missing from PATH in sudo-less shells and stripped envs.
		if _, err := exec.LookPath(name); err != nil && isExecutable("/usr/sbin/runuser") {
			name = "/usr/sbin/runuser"
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir // the caller's cwd may be unreadable for asUser
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func stop() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	base := filepath.Join(root, ".pgdata")
	data := filepath.Join(base, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
		fmt.Fprintf(os.Stderr, "devdb: no private cluster is running in %s, nothing to do\n", data)
		return nil
	}
	bin, ok := findPGBin()
	if !ok {
		return fmt.Errorf("a private cluster runs in %s, but pg_ctl was not found to stop it", data)
	}
	asUser := ""
	if os.Geteuid() == 0 {
		asUser = "postgres"
	}
	if err := runPG(asUser, base, bin.pgCtl, "-D", data, "-m", "fast", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop for %s: %w", data, err)
	}
	return nil
}

// ensureGitignore appends the lines devdb relies on, leaving the rest of the
// file, which others edit too, untouched.
func ensureGitignore(path string) error {
	want := []string{".pgdata/", "/bin/", "/bench/results/"}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	have := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(old)))
	for sc.Scan() {
		have[strings.TrimSpace(sc.Text())] = true
	}
	var add strings.Builder
	if len(old) > 0 && old[len(old)-1] != '\n' {
		add.WriteByte('\n')
	}
	missing := false
	for _, line := range want {
		if !have[line] {
			add.WriteString(line + "\n")
			missing = true
		}
	}
	if !missing {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := io.WriteString(f, add.String()); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return f.Close()
}

// repoRoot is the directory holding go.mod, so .pgdata and docker compose do
// not depend on where make or go run was started.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod found in %s or any parent: run devdb inside the repository", dir)
		}
	}
}

func isLocalHost(h string) bool {
	return h == "127.0.0.1" || h == "localhost" || h == "::1"
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
