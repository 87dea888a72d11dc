// Package process starts and stops the programs tests and the benchmark
// run beside themselves (servers, pgbouncer) and reads what /proc says
// about the CPU and memory of processes.
package process

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a program we started that serves HTTP on a loopback port.
type Process struct {
	URL     string
	LogPath string // "" when its output is discarded
	bin     string
	cmd     *exec.Cmd
	exited  chan struct{}
	logf    *os.File
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Start starts bin with this process's environment, then env, then
// HTTP_ADDR on a free loopback port; its output goes to logPath ("":
// discarded).
func Start(bin string, env []string, logPath string) (_ *Process, err error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &Process{URL: "http://" + addr, bin: bin, LogPath: logPath, exited: make(chan struct{})}
	p.cmd = exec.Command(abs)
	p.cmd.Env = append(append(os.Environ(), env...), "HTTP_ADDR="+addr)
	if logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return nil, fmt.Errorf("log of %s: %w", bin, err)
		}
		if p.logf, err = os.Create(logPath); err != nil {
			return nil, fmt.Errorf("log of %s: %w", bin, err)
		}
		p.cmd.Stdout, p.cmd.Stderr = p.logf, p.logf
	}
	if err := p.cmd.Start(); err != nil {
		if p.logf != nil {
			p.logf.Close()
		}
		return nil, fmt.Errorf("start %s: %w", abs, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// WaitReady polls /readyz until it answers 200.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	if err := waitReady(ctx, p.URL, timeout, p.exited); err != nil {
		if p.LogPath != "" {
			err = fmt.Errorf("%s: %w (log: %s)", p.bin, err, p.LogPath)
		}
		return err
	}
	return nil
}

// Stop sends SIGTERM (SIGKILL if the process is still running after 20 s)
// and waits for the process to end.
func (p *Process) Stop() error {
	err := Terminate(p.cmd, p.exited, 20*time.Second)
	if p.logf != nil {
		_ = p.logf.Close()
		p.logf = nil
	}
	return err
}

// Terminate sends cmd SIGTERM unless it has exited already, and SIGKILL
// if it is still running after grace; it returns once the process has
// ended (exited is closed when cmd.Wait returns).
func Terminate(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) error {
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s; killed", filepath.Base(cmd.Path), cmd.Process.Pid, grace)
	}
}

// FreePort returns a loopback port nobody listens on right now; a caller
// racing others for it must be ready to try again.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls baseURL/readyz until it answers 200.
func waitReady(ctx context.Context, baseURL string, timeout time.Duration, exited <-chan struct{}) error {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/readyz not ready within %s: %s", baseURL, timeout, last)
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited before it was ready (last /readyz: %s)", last)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
