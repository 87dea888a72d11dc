// Package docs_test runs the shell examples of README.md and docs/*.md, so
// that what the documents show is what the server does.
//
// The convention, in a document:
//
//   - A ```console block holds examples. A line starting with "$ " is a
//     command, lines right after it starting with "> " continue it (as
//     bash's second prompt shows), and the lines up to the next command
//     are its output, stdout and stderr together.
//   - <!-- server: K=V ... --> before a block (re)starts the document's
//     server with these settings, on the same database; without one the
//     first block starts it with none. An address in a setting
//     (localhost:9464) gets a free port, as HTTP_ADDR's localhost:8080
//     does.
//   - <!-- not run: why --> before a block leaves it out.
//   - ```sh blocks show commands without output and are not run.
//   - <!-- from: path --> before a block of another language (```go)
//     says the block is an excerpt of that file of the repository: it
//     must appear there as it is, so that the code a document shows is
//     code that builds and runs (a command of the document runs the file).
//
// Each document runs on its own: a fresh database (pgtest.New), the server
// built from this tree as a real process, and one bash session in the
// repository's root in which every command runs in order, so a shell
// function or a code from an earlier answer serves later commands. Before
// a command runs, the document's addresses, bin/server and the codes seen
// in earlier outputs are replaced by the real ones. Outputs are compared
// after masking what changes per run (masks below), ignoring what ends a
// line (spaces; the CR of HTTP's CRLF) and blank lines at the end.
// `go test ./docs -update` writes the real outputs into the documents
// instead, for a change that meant to change them.
package docs_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
)

var update = flag.Bool("update", false, "write the real outputs into the documents")

// masks replace what differs from run to run, on both sides of a comparison.
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	// A checkout code's random part; its sale id must match.
	{regexp.MustCompile(`\b(\d+\.)[A-Za-z0-9_-]{22}`), "${1}<code>"},
	// Timestamps, in JSON (RFC 3339) and as psql and goose print them.
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:\d\d)?)?`), "<time>"},
	// The build's version in GET /.
	{regexp.MustCompile(`"version":"[^"]*"`), `"version":"<version>"`},
	// Headers that differ per answer (the length with the timestamps'
	// digits, as RFC 3339 drops trailing zeros).
	{regexp.MustCompile(`(?m)^(Date|X-Request-Id|Content-Length): .*$`), "$1: <masked>"},
	// A webhook signature's time and HMACs (Flashsale-Signature).
	{regexp.MustCompile(`\bt=\d{9,}\b`), "t=<unix>"},
	{regexp.MustCompile(`\bv1=[0-9a-f]{64}\b`), "v1=<hmac>"},
}

var codeRE = regexp.MustCompile(`\b\d+\.[A-Za-z0-9_-]{22}`)

func TestExamples(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The tools the examples use, asked for up front: a missing one would
	// otherwise show as a diff of "command not found".
	for _, tool := range []string{"bash", "curl", "jq", "make", "openssl", "psql", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the examples of README.md and docs/ need %s: install it (Debian: apt-get install bash curl jq make openssl postgresql-client python3)", tool)
		}
	}
	server := filepath.Join(t.TempDir(), "server")
	build := exec.Command("go", "build", "-o", server, "./cmd/server")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/server: %v\n%s", err, out)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, doc := range append([]string{filepath.Join(root, "README.md")}, docs...) {
		rel, _ := filepath.Rel(root, doc)
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			runDocument(t, root, server, doc)
		})
	}
}

// excerpt is a block of another language that a <!-- from: path -->
// comment says is part of a file.
type excerpt struct {
	line int    // of the fence, 1-based
	file string // relative to the repository's root
	text string
}

// block is one ```console block of a document.
type block struct {
	line     int      // of the fence, 1-based
	server   []string // settings of a <!-- server: --> comment before it, nil when none
	notRun   bool
	commands []command
}

type command struct {
	text   string // with continuations, without prompts
	output []string
	first  int // index in the document's lines of its first output line (the 1-based number of its last line)
	end    int // one past its last output line
}

// parse returns the console blocks, the excerpts of files, and the lines
// of other fenced blocks that start with a prompt: an example with output
// there would never run.
func parse(lines []string) (blocks []block, excerpts []excerpt, stray []int) {
	var server []string
	notRun := false
	from := ""
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(l, "<!-- from:"):
			from = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "<!-- from:"), "-->"))
		case strings.HasPrefix(l, "<!-- server:"):
			server = strings.Fields(strings.TrimSuffix(strings.TrimPrefix(l, "<!-- server:"), "-->"))
			if server == nil {
				server = []string{}
			}
		case strings.HasPrefix(l, "<!-- not run:"):
			notRun = true
		case l == "```console":
			b := block{line: i + 1, server: server, notRun: notRun}
			for i++; i < len(lines) && lines[i] != "```"; i++ {
				switch {
				case strings.HasPrefix(lines[i], "$ "):
					b.commands = append(b.commands, command{text: lines[i][2:], first: i + 1, end: i + 1})
				case strings.HasPrefix(lines[i], "> ") && len(b.commands) > 0 && len(b.commands[len(b.commands)-1].output) == 0:
					c := &b.commands[len(b.commands)-1]
					c.text += "\n" + lines[i][2:]
					c.first, c.end = i+1, i+1
				case len(b.commands) > 0:
					c := &b.commands[len(b.commands)-1]
					c.output = append(c.output, lines[i])
					c.end = i + 1
				}
			}
			blocks = append(blocks, b)
			server, notRun, from = nil, false, ""
		case strings.HasPrefix(l, "```"):
			// Another language: skip to its end so a "<!--" inside it counts for nothing.
			x := excerpt{line: i + 1, file: from}
			var text []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				if strings.HasPrefix(lines[i], "$ ") {
					stray = append(stray, i+1)
				}
				text = append(text, lines[i])
			}
			if from != "" {
				x.text = strings.Join(text, "\n")
				excerpts = append(excerpts, x)
			}
			server, notRun, from = nil, false, ""
		}
	}
	return blocks, excerpts, stray
}

func runDocument(t *testing.T, root, server, doc string) {
	src, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	blocks, excerpts, stray := parse(lines)
	for _, n := range stray {
		t.Errorf("%s:%d: a prompt outside a console block: make the block ```console so that it runs", filepath.Base(doc), n)
	}
	for _, x := range excerpts {
		file, err := os.ReadFile(filepath.Join(root, x.file))
		if err != nil {
			t.Errorf("%s:%d: <!-- from: %s -->: %v", filepath.Base(doc), x.line, x.file, err)
		} else if !strings.Contains(string(file), x.text) {
			t.Errorf("%s:%d: the block is not in %s as it is: copy it from there again", filepath.Base(doc), x.line, x.file)
		}
	}
	if !slices.ContainsFunc(blocks, func(b block) bool { return !b.notRun }) {
		return
	}

	// The examples assume one sale for the whole run; a run across the
	// hour (SALE_DURATION) sees the next one open.
	began := time.Now().Truncate(time.Hour)
	dbURL := pgtest.New(t)
	// What the document writes, and what it is in this run: replaced in
	// commands, and back in outputs.
	addr := freeAddr(t)
	subst := map[string]string{
		"localhost:8080": addr,
		"bin/server":     server,
		"postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable": dbURL,
	}
	codes := map[string]string{} // the document's codes and the real ones, in commands only
	sh := startShell(t, root, dbURL)
	var srv *serverProc
	ran, commands, skipped := 0, 0, 0
	edits := map[int][]string{} // for -update: output lines at a command's first line
	for _, b := range blocks {
		if b.notRun {
			skipped++
			continue
		}
		if len(b.commands) == 0 {
			t.Fatalf("%s:%d: a console block without a \"$ \" command", filepath.Base(doc), b.line)
		}
		if b.server != nil || srv == nil {
			srv.stop(t)
			env := []string{"DATABASE_URL=" + dbURL, "HTTP_ADDR=" + addr}
			for _, kv := range b.server {
				for _, a := range addrRE.FindAllString(kv, -1) {
					if _, ok := subst[a]; !ok {
						subst[a] = freeAddr(t)
					}
				}
				env = append(env, replaceAll(kv, subst))
			}
			srv = startServer(t, server, addr, env)
		}
		for _, c := range b.commands {
			commands++
			got := strings.Split(sh.run(t, replaceAll(replaceAll(c.text, codes), subst)), "\n")
			for i := range got {
				got[i] = strings.TrimRight(replaceAll(got[i], invert(subst)), " \t\r")
			}
			got = trimBlank(got)
			want := trimBlank(c.output)
			// Codes pair up in order: a later command that names a code of
			// the document means the real one.
			real, named := codeRE.FindAllString(strings.Join(got, "\n"), -1), codeRE.FindAllString(strings.Join(want, "\n"), -1)
			for i := range min(len(real), len(named)) {
				codes[named[i]] = real[i]
			}
			if mask(got) == mask(want) {
				continue
			}
			if *update {
				for i := range got {
					got[i] = replaceAll(got[i], invert(codes))
				}
				edits[c.first] = got
				continue
			}
			hint := ""
			if time.Now().Truncate(time.Hour) != began {
				hint = "\n(the run crossed the hour, when the next sale opens and sale ids move on: run it again)"
			}
			t.Fatalf("%s:%d: $ %s\noutput differs (-doc +real, after masks):\n%s%s\nserver log:\n%s",
				filepath.Base(doc), c.first, c.text, diff(mask(want), mask(got)), hint, srv.logTail())
		}
		ran++
	}
	srv.stop(t)
	t.Logf("%s: %d blocks (%d commands) run, %d marked not run", filepath.Base(doc), ran, commands, skipped)
	if *update && len(edits) > 0 {
		writeEdits(t, doc, lines, blocks, edits)
	}
}

var addrRE = regexp.MustCompile(`(localhost|127\.0\.0\.1):\d+`)

func replaceAll(s string, subst map[string]string) string {
	// Longest first, so that a key inside a longer one does not cut it.
	keys := make([]string, 0, len(subst))
	for k := range subst {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return len(b) - len(a) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, subst[k])
	}
	return s
}

func invert(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func mask(lines []string) string {
	s := strings.Join(lines, "\n")
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// shell is one bash process; commands go to its stdin one at a time.
type shell struct {
	stdin  *os.File
	output chan string // chunks of its stdout and stderr
	buf    strings.Builder
}

const marker = "@@example-done@@"

func startShell(t *testing.T, dir, dbURL string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = dir
	cmd.Env = shellEnv(dbURL)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to stop what it started in the background too
	if err := cmd.Start(); err != nil {
		t.Fatalf("bash: %v", err)
	}
	inR.Close()
	outW.Close()
	sh := &shell{stdin: inW, output: make(chan string)}
	go func() {
		r := bufio.NewReader(outR)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				sh.output <- string(buf[:n])
			}
			if err != nil {
				close(sh.output)
				return
			}
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		outR.Close()
	})
	return sh
}

// shellEnv is the test's environment without the server's settings (the
// documents say which they set) and without make's own variables, which
// would make a make in an example a sub-make of `make test`.
func shellEnv(dbURL string) []string {
	drop := map[string]bool{"MAKEFLAGS": true, "MFLAGS": true, "MAKELEVEL": true, "MAKEOVERRIDES": true}
	settings, _ := config.Settings()
	for _, s := range settings {
		drop[s.Name] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !drop[name] {
			env = append(env, kv)
		}
	}
	// make psql and the like use DATABASE_URL from the environment, as in
	// a reader's shell where it is set.
	return append(env, "DATABASE_URL="+dbURL)
}

// run runs one command and returns what it printed. Its stdin is
// /dev/null, so a command reading stdin cannot eat the next one.
func (sh *shell) run(t *testing.T, text string) string {
	t.Helper()
	fmt.Fprintf(sh.stdin, "{\n%s\n} </dev/null\nprintf '\\n%s\\n'\n", text, marker)
	deadline := time.After(30 * time.Second)
	for {
		if out, ok := strings.CutSuffix(sh.buf.String(), "\n"+marker+"\n"); ok {
			sh.buf.Reset()
			return out
		}
		select {
		case chunk, ok := <-sh.output:
			if !ok {
				t.Fatalf("$ %s: bash exited; it printed:\n%s", text, sh.buf.String())
			}
			sh.buf.WriteString(chunk)
		case <-deadline:
			t.Fatalf("$ %s: no end after 30s; it printed:\n%s", text, sh.buf.String())
		}
	}
}

type serverProc struct {
	cmd *exec.Cmd
	log string
}

func startServer(t *testing.T, bin, addr string, env []string) *serverProc {
	t.Helper()
	log := filepath.Join(t.TempDir(), "server.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(shellEnv(""), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &serverProc{cmd: cmd, log: log}
	t.Cleanup(func() { s.stop(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for ctx.Err() == nil {
		if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server %v not ready within 30s; its log:\n%s", env, s.logTail())
	return nil
}

func (s *serverProc) stop(t *testing.T) {
	if s == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		t.Errorf("server did not stop within 20s of SIGTERM")
	}
}

func (s *serverProc) logTail() string {
	if s == nil {
		return ""
	}
	b, _ := os.ReadFile(s.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// diff is a line diff (longest common subsequence), enough for an example.
func diff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out.WriteString("  " + x[i] + "\n")
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			out.WriteString("- " + x[i] + "\n")
			i++
		default:
			out.WriteString("+ " + y[j] + "\n")
			j++
		}
	}
	return out.String()
}

// writeEdits replaces the outputs that differed with the real ones.
func writeEdits(t *testing.T, doc string, lines []string, blocks []block, edits map[int][]string) {
	var out []string
	next := 0
	for _, b := range blocks {
		for _, c := range b.commands {
			got, ok := edits[c.first]
			if !ok {
				continue
			}
			out = append(out, lines[next:c.first]...)
			out = append(out, got...)
			next = c.end
		}
	}
	out = append(out, lines[next:]...)
	if err := os.WriteFile(doc, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d outputs rewritten", filepath.Base(doc), len(edits))
}
