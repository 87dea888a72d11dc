package testproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/testproxy"
)

// echoServer answers every line with itself, so a test sees whether bytes
// made the round trip through the proxy.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip sends a line and returns the line read back, or the read error
// when nothing came back within wait.
func roundTrip(c net.Conn, wait time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestCutAndRestore(t *testing.T) {
	t.Parallel()
	p := testproxy.Start(t, echoServer(t))

	before := dial(t, p.Addr())
	if got, err := roundTrip(before, 2*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("before the cut: %q, %v", got, err)
	}

	p.Cut()
	if _, err := roundTrip(before, 2*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection live at the cut must be closed, got err %v", err)
	}
	// The black hole: the connection is accepted but never answered, so only
	// the client's own deadline ends the wait.
	during := dial(t, p.Addr())
	if got, err := roundTrip(during, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("during the cut: got %q, %v; want a read timeout", got, err)
	}

	p.Restore()
	after := dial(t, p.Addr())
	if got, err := roundTrip(after, 2*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("after restore: %q, %v", got, err)
	}
	if _, err := roundTrip(during, 2*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection held during the cut must be closed by Restore, got err %v", err)
	}
}
