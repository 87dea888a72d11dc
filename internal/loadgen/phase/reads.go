package phase

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/driver"
	"github.com/flashsale/flashsale/internal/loadgen/stats"
)

// The read endpoints that run beside a storm in the reads phase.
const (
	ReadCurrentPath = "/sales/current"
	ReadItemsPath   = "/sales/current/items?limit=1000"
)

// ReadSpec is the readers of a reads phase: clients looping on GET
// requests, each answer read in full before the next request.
type ReadSpec struct {
	URLs    []string // servers' base URLs; clients are spread over them in turn
	Current int      // clients on ReadCurrentPath
	Items   int      // clients on ReadItemsPath
	Timeout time.Duration
	// Interval: each client's pause after an answer (a poller's period);
	// 0 asks again at once.
	Interval time.Duration
}

// Reads is one read endpoint's answers over the reads phase.
type Reads struct {
	Path    string
	Clients int
	Stats   *stats.Endpoint
	Elapsed time.Duration
}

// Readers are running read clients.
type Readers struct {
	dials     atomic.Int64 // connections opened: one per client when keep-alive works
	stop      chan struct{}
	wg        sync.WaitGroup
	start     time.Time
	transport *http.Transport
	spec      ReadSpec
	stats     []*stats.Endpoint // per client
	paths     []string          // per client
}

// StartReaders starts spec's clients. They use net/http's client, as a
// browser or a poller would: keep-alive connections (one per client) and
// every answer read to the end, then spec.Interval's pause, if any.
func StartReaders(ctx context.Context, spec ReadSpec) *Readers {
	n := spec.Current + spec.Items
	r := &Readers{
		stop: make(chan struct{}), start: time.Now(), spec: spec,
		transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n, IdleConnTimeout: time.Minute},
		stats:     make([]*stats.Endpoint, n), paths: make([]string, n),
	}
	dialer := &net.Dialer{Timeout: spec.Timeout}
	r.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		r.dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	client := &http.Client{Transport: r.transport, Timeout: spec.Timeout}
	for i := range n {
		path := ReadCurrentPath
		if i >= spec.Current {
			path = ReadItemsPath
		}
		url := spec.URLs[i%len(spec.URLs)] + path
		st := stats.NewEndpoint()
		r.stats[i], r.paths[i] = st, path
		r.wg.Go(func() {
			var body bytes.Buffer
			for {
				select {
				case <-r.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				t0 := time.Now()
				res := get(ctx, client, url, &body)
				st.Record(time.Since(t0), res)
				switch {
				case spec.Interval > 0:
					select {
					case <-r.stop:
						return
					case <-time.After(spec.Interval):
					}
				case res.Err != nil:
					time.Sleep(time.Millisecond) // do not spin on a dead server
				}
			}
		})
	}
	return r
}

// get requests url and reads the answer in full into body. Outcome is "ok"
// for a 2xx, else the error code of the body.
func get(ctx context.Context, client *http.Client, url string, body *bytes.Buffer) driver.Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return driver.Result{Err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return driver.Result{Err: err}
	}
	defer resp.Body.Close()
	body.Reset()
	if _, err := io.Copy(body, resp.Body); err != nil {
		return driver.Result{Err: err}
	}
	r := driver.Result{Status: resp.StatusCode, Outcome: "ok"}
	if resp.StatusCode >= 300 {
		r.Outcome = driver.ErrorOutcome(resp.StatusCode, body.Bytes())
	}
	return r
}

// Finish stops the clients, waits for their last answers and returns them
// per path, and how many connections they opened in all.
func (r *Readers) Finish() ([]Reads, int64) {
	close(r.stop)
	r.wg.Wait()
	elapsed := time.Since(r.start)
	r.transport.CloseIdleConnections()
	var out []Reads
	for _, p := range []struct {
		path    string
		clients int
	}{{ReadCurrentPath, r.spec.Current}, {ReadItemsPath, r.spec.Items}} {
		if p.clients == 0 {
			continue
		}
		all := stats.NewEndpoint()
		for i, st := range r.stats {
			if r.paths[i] == p.path {
				all.Merge(st)
			}
		}
		out = append(out, Reads{Path: p.path, Clients: p.clients, Stats: all, Elapsed: elapsed})
	}
	return out, r.dials.Load()
}
