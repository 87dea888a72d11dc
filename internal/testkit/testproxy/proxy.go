// Package testproxy is a TCP proxy a test controls, to take a dependency
// such as the database away and bring it back while the code under test runs.
package testproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards every connection it accepts to one target address until
// Cut, and black-holes them after it.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	cut    bool
	closed bool
	live   map[*link]struct{}
	held   map[net.Conn]struct{}
}

// link is one forwarded connection; server is nil while it is being dialled.
type link struct{ client, server net.Conn }

// dialTimeout only bounds reaching the real target; a cut proxy never dials.
const dialTimeout = 5 * time.Second

// Start listens on a free loopback port and forwards to target until the
// test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testproxy: listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, live: map[*link]struct{}{}, held: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the host:port clients connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every live connection and black-holes new ones: they are
// accepted but nothing is ever forwarded or answered. A client then learns of
// the outage only from its own timeouts, the nastiest way a database can go.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.dropLive()
}

// Restore forwards new connections again. Those accepted during the cut are
// closed: what their clients sent went nowhere, so they cannot be resumed.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.dropHeld()
}

// Close stops listening, closes every connection and waits for every
// goroutine of the proxy to end.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	p.dropLive()
	p.dropHeld()
	p.mu.Unlock()
	p.wg.Wait()
}

// dropLive and dropHeld need p.mu held.
func (p *Proxy) dropLive() {
	for l := range p.live {
		l.close()
	}
	clear(p.live)
}

func (p *Proxy) dropHeld() {
	for c := range p.held {
		_ = c.Close()
	}
	clear(p.held)
}

func (l *link) close() {
	_ = l.client.Close()
	if l.server != nil {
		_ = l.server.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient accept error must not stop the proxy
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	l := &link{client: c}
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		_ = c.Close()
		return
	case p.cut:
		p.held[c] = struct{}{}
		p.mu.Unlock()
		return
	}
	p.live[l] = struct{}{}
	p.mu.Unlock()

	s, err := net.DialTimeout("tcp", p.target, dialTimeout)
	p.mu.Lock()
	_, stillLive := p.live[l] // a Cut or Close while dialling already closed the client
	if err != nil || !stillLive {
		delete(p.live, l)
		p.mu.Unlock()
		_ = c.Close()
		if s != nil {
			_ = s.Close()
		}
		return
	}
	l.server = s
	p.mu.Unlock()

	// Either direction ending ends both, so a half-closed link never lingers.
	var pipes sync.WaitGroup
	pipes.Add(2)
	pipe := func(dst, src net.Conn) {
		defer pipes.Done()
		_, _ = io.Copy(dst, src)
		l.close()
	}
	go pipe(s, c)
	go pipe(c, s)
	pipes.Wait()
	p.mu.Lock()
	delete(p.live, l)
	p.mu.Unlock()
}
