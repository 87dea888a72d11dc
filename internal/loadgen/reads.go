package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The read endpoints that run beside a storm in the reads phase.
const (
	readCurrentPath = "/sales/current"
	readItemsPath   = "/sales/current/items?limit=1000"
)

// readSpec is the readers of a reads phase: clients looping on GET
// requests, each answer read in full before the next request.
type readSpec struct {
	urls    []string // servers' base URLs; clients are spread over them in turn
	current int      // clients on readCurrentPath
	items   int      // clients on readItemsPath
	timeout time.Duration
	// interval: each client's pause after an answer (a poller's period);
	// 0 asks again at once.
	interval time.Duration
}

// ReadReport is one read endpoint's requests during the reads phase.
type ReadReport struct {
	Path    string `json:"path"`
	Clients int    `json:"clients"`
	EndpointReport
}

// readers are running read clients.
type readers struct {
	dials     atomic.Int64 // connections opened: one per client when keep-alive works
	stop      chan struct{}
	wg        sync.WaitGroup
	start     time.Time
	transport *http.Transport
	spec      readSpec
	stats     []*endpointStats // per client
	paths     []string         // per client
}

// startReaders starts spec's clients. They use net/http's client, as a
// browser or a poller would: keep-alive connections (one per client) and
// every answer read to the end, then spec.interval's pause, if any.
func startReaders(ctx context.Context, spec readSpec) *readers {
	n := spec.current + spec.items
	r := &readers{
		stop: make(chan struct{}), start: time.Now(), spec: spec,
		transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n, IdleConnTimeout: time.Minute},
		stats:     make([]*endpointStats, n), paths: make([]string, n),
	}
	dialer := &net.Dialer{Timeout: spec.timeout}
	r.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		r.dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	client := &http.Client{Transport: r.transport, Timeout: spec.timeout}
	for i := range n {
		path := readCurrentPath
		if i >= spec.current {
			path = readItemsPath
		}
		url := spec.urls[i%len(spec.urls)] + path
		st := newEndpointStats()
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
				st.record(time.Since(t0), res)
				switch {
				case spec.interval > 0:
					select {
					case <-r.stop:
						return
					case <-time.After(spec.interval):
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
func get(ctx context.Context, client *http.Client, url string, body *bytes.Buffer) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Result{Err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	body.Reset()
	if _, err := io.Copy(body, resp.Body); err != nil {
		return Result{Err: err}
	}
	r := Result{Status: resp.StatusCode, Outcome: "ok"}
	if resp.StatusCode >= 300 {
		if c := jsonString(body.Bytes(), `"code":"`); c != nil {
			r.Outcome = intern(c)
		} else {
			r.Outcome = "http_" + strconv.Itoa(resp.StatusCode)
		}
	}
	return r
}

// finish stops the clients, waits for their last answers and reports per
// path, and how many connections they opened in all.
func (r *readers) finish() ([]ReadReport, int64) {
	close(r.stop)
	r.wg.Wait()
	elapsed := time.Since(r.start)
	r.transport.CloseIdleConnections()
	var out []ReadReport
	for _, p := range []struct {
		path    string
		clients int
	}{{readCurrentPath, r.spec.current}, {readItemsPath, r.spec.items}} {
		if p.clients == 0 {
			continue
		}
		all := newEndpointStats()
		for i, st := range r.stats {
			if r.paths[i] == p.path {
				all.merge(st)
			}
		}
		out = append(out, ReadReport{Path: p.path, Clients: p.clients, EndpointReport: endpointReport(all, elapsed, false)})
	}
	return out, r.dials.Load()
}
