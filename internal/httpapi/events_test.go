package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// streamClient has no overall timeout: a stream lasts as long as the test
// wants it, bounded by each request's context instead.
var streamClient = &http.Client{}

// sseStream is one open GET /sales/current/events.
type sseStream struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// sseMessage is one dispatched block of the stream: an event, or a comment.
type sseMessage struct {
	Event, Data, Comment string
}

func openStream(ctx context.Context, base string) (*sseStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sales/current/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := streamClient.Do(req)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("events: status %d, Content-Type %q, want 200 text/event-stream", resp.StatusCode, ct)
	}
	return &sseStream{body: resp.Body, r: bufio.NewReader(resp.Body)}, nil
}

func (s *sseStream) Close() { s.body.Close() }

// next reads up to the next blank line that ends an event or a comment,
// skipping the retry field.
func (s *sseStream) next() (sseMessage, error) {
	var m sseMessage
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if m != (sseMessage{}) {
				return m, nil
			}
		case field == "":
			m.Comment = value
		case field == "event":
			m.Event = value
		case field == "data":
			m.Data += value
		case field == "retry":
		default:
			return m, fmt.Errorf("unexpected line %q", line)
		}
	}
}

// nextSale is the next "sale" event's data, past "items" events; any
// other event fails.
func (s *sseStream) nextSale() (map[string]any, error) {
	for {
		m, err := s.next()
		if err != nil {
			return nil, err
		}
		if (m.Comment != "" && m.Event == "") || m.Event == "items" {
			continue
		}
		if m.Event != "sale" {
			return nil, fmt.Errorf("event %q (%s), want sale", m.Event, m.Data)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(m.Data), &body); err != nil {
			return nil, fmt.Errorf("sale event data %q: %w", m.Data, err)
		}
		return body, nil
	}
}

func mustOpen(t *testing.T, base string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := openStream(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// The stream's first event comes at once and is GET /sales/current's body
// plus the next sale's start and the server's clock; a checkout shows in
// the next one.
func TestSaleEventsMatchCurrentSale(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(apitest.DefaultSettings))
	s := mustOpen(t, srv.URL)
	ev, err := s.nextSale()
	if err != nil {
		t.Fatal(err)
	}
	cur := apitest.GetOK(t, srv.URL+"/sales/current")
	for k, v := range cur {
		if fmt.Sprint(ev[k]) != fmt.Sprint(v) {
			t.Errorf("event %s = %v, GET /sales/current has %v", k, ev[k], v)
		}
	}
	if ev["next_sale_starts_at"] != cur["ends_at"] {
		t.Errorf("next_sale_starts_at %v, want ends_at %v", ev["next_sale_starts_at"], cur["ends_at"])
	}
	if st := apitest.Time(t, ev, "server_time"); time.Since(st).Abs() > time.Minute {
		t.Errorf("server_time %v is not now", st)
	}
	apitest.Held(t, srv.URL, "ann", 1)
	// The event that first shows the hold may be the second: item 1's
	// counts may be read before the sale's (see salewatch.Watcher).
	for i := 0; ; i++ {
		if ev, err = s.nextSale(); err != nil {
			t.Fatal(err)
		}
		held, sold := apitest.Int(t, ev, "units_held"), apitest.Int(t, ev, "units_sold")
		if held == 1 && sold == 0 {
			break
		}
		if i == 1 || held != 0 || sold != 0 {
			t.Fatalf("after one checkout: units_held %d, units_sold %d, want 1 and 0 by the second event", held, sold)
		}
	}

	// Stopped streams end, and new ones are refused in the API's shape.
	srv.API.StopStreams()
	for {
		if _, err := s.next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream after StopStreams: %v, want its end (EOF)", err)
			}
			break
		}
	}
	apitest.Check(t, "events after StopStreams", apitest.Get(t, srv.URL+"/sales/current/events"), http.StatusServiceUnavailable, "unavailable")
}

// With no sale open the stream says why, in the API's error body.
func TestSaleEventsWithoutSale(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	m, err := mustOpen(t, srv.URL).next()
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if m.Event != "sale_error" || json.Unmarshal([]byte(m.Data), &body) != nil || apitest.ErrorCode(body) != "no_active_sale" {
		t.Fatalf("first message %+v, want a sale_error event with code no_active_sale", m)
	}
}

// TestThousandWatchersOneReadPerSecond: 1,000 event streams on one server
// cost the database one read of the sale per second, each sees the counts
// change, and each handler ends when its client goes. (10,000 watchers are
// shown at the salewatch level, without 10,000 connections.)
func TestThousandWatchersOneReadPerSecond(t *testing.T) {
	const (
		watchers = 1000
		holds    = 3
	)
	srv := apitest.Start(t, apitest.WeekLong(apitest.DefaultSettings))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	var first, last sync.WaitGroup
	first.Add(watchers)
	last.Add(watchers)
	errs := make(chan error, watchers)
	streams := make([]*sseStream, watchers)
	for i := range streams {
		s, err := openStream(ctx, srv.URL)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		streams[i] = s
		go func() {
			defer last.Done()
			saw := false
			defer func() {
				if !saw {
					first.Done()
				}
			}()
			for {
				ev, err := s.nextSale()
				if err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
				if !saw {
					saw = true
					first.Done()
				}
				if held, _ := ev["units_held"].(float64); held == holds {
					return
				}
			}
		}()
	}
	first.Wait()
	for i := range holds {
		apitest.Held(t, srv.URL, fmt.Sprintf("user-%d", i), i+1)
	}
	last.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	w := srv.API.SaleWatcher()
	reads := w.Reads()
	t.Logf("%d streams saw %d checkouts: %d reads in %v", watchers, holds, reads, elapsed.Round(time.Millisecond))
	if max := int64(elapsed.Seconds()) + 1; reads > max {
		t.Errorf("%d reads in %v: want at most %d (one per second, plus the first)", reads, elapsed, max)
	}

	for _, s := range streams {
		s.Close()
	}
	testutil.Poll(t, 10*time.Second, func() error {
		if w.Watching() {
			return errors.New("the sale is still read after every client went away")
		}
		return nil
	})
}

// A stream outlives the server's read and write timeouts, gets heartbeat
// comments while nothing changes, and ends when the server shuts down, so
// that Shutdown does not wait for it.
func TestEventStreamTimeoutsAndShutdown(t *testing.T) {
	t.Parallel()
	env := saletest.New(t)
	api := httpapi.New(env.Service, httpapi.Options{
		Version: "test", Log: testutil.Logger(t, slog.LevelWarn), EventHeartbeat: 50 * time.Millisecond,
	})
	srv := api.HTTPServer("127.0.0.1:0")
	const timeout = 200 * time.Millisecond // instead of the real 10s and 30s
	srv.ReadTimeout, srv.WriteTimeout = timeout, timeout
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })

	opened := time.Now()
	s := mustOpen(t, "http://"+ln.Addr().String())
	if _, err := s.nextSale(); err != nil {
		t.Fatal(err)
	}
	for heartbeats := 0; time.Since(opened) < 5*timeout; {
		m, err := s.next()
		if err != nil {
			t.Fatalf("stream ended after %v (%d heartbeats): %v", time.Since(opened), heartbeats, err)
		}
		if m.Comment == "" || m.Event != "" {
			t.Fatalf("message %+v, want a heartbeat comment: nothing changed", m)
		}
		heartbeats++
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	began := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a stream open: %v", err)
	}
	t.Logf("Shutdown took %v with a stream open", time.Since(began).Round(time.Millisecond))
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	for {
		if _, err := s.next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream after shutdown: %v, want its end (EOF)", err)
			}
			break
		}
	}
}
