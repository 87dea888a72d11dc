package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/flashsale/flashsale/internal/salewatch"
)

// liveStreams is what the event streams of GET /sales/current/events share:
// the process's one reader of the sale and the context that ends them all.
type liveStreams struct {
	watch     *salewatch.Watcher
	heartbeat time.Duration
	// ctx ends every stream at server shutdown: http.Server.Shutdown waits
	// for handlers to return, and a stream's handler would not otherwise.
	ctx  context.Context
	stop context.CancelFunc
	// items is the last "items" event encoded, shared by the streams.
	items *atomic.Pointer[encodedItems]
	// open counts the streams being served, for the metrics.
	open *atomic.Int64
}

const (
	defaultHeartbeat = 15 * time.Second // well inside the idle timeouts of common proxies (60s)
	// streamWriteTimeout bounds each write of a stream: the server's
	// WriteTimeout counts from the request and would cut every stream at
	// 30s, so a stream sets its own deadline before each write instead. A
	// client that takes longer to accept a few hundred bytes is gone.
	streamWriteTimeout = 10 * time.Second
	// reconnectMillis is the EventSource's wait before it reconnects.
	reconnectMillis = 2000
)

func newLiveStreams(w *salewatch.Watcher, heartbeat time.Duration) liveStreams {
	if heartbeat <= 0 {
		heartbeat = defaultHeartbeat
	}
	ctx, stop := context.WithCancel(context.Background())
	return liveStreams{watch: w, heartbeat: heartbeat, ctx: ctx, stop: stop, items: new(atomic.Pointer[encodedItems]), open: new(atomic.Int64)}
}

// StopStreams ends every event stream and refuses new ones. HTTPServer's
// server calls it when Shutdown starts; call it before closing any other
// server that serves s.
func (s *Server) StopStreams() { s.live.stop() }

// OpenStreams is how many event streams are being served now.
func (s *Server) OpenStreams() int64 { return s.live.open.Load() }

// SaleWatcher is the reader behind the event streams, for tests: it reads
// the sale at most once per second however many watch.
func (s *Server) SaleWatcher() *salewatch.Watcher { return s.live.watch }

// saleEventJSON is the data of a "sale" event: the body of GET
// /sales/current plus what a page needs to count down.
type saleEventJSON struct {
	saleJSON
	// NextSaleStartsAt is when the next sale starts: absent while none
	// exists yet (the scheduler makes the next generated sale ahead of
	// time; a shop's next sale may be days away or not defined).
	NextSaleStartsAt *time.Time `json:"next_sale_starts_at,omitempty"`
	// ReadAt is when the counts were read, to tell them from a page of
	// items read earlier or later.
	ReadAt time.Time `json:"read_at"`
	// ServerTime is when the event was written, so that a page whose
	// clock is off still counts down to the right moment.
	ServerTime time.Time `json:"server_time"`
}

// itemsEventJSON is the data of an "items" event: the items whose free or
// held units changed since the stream's previous event, with their counts
// as of read_at.
type itemsEventJSON struct {
	SaleID int64           `json:"sale_id"`
	ReadAt time.Time       `json:"read_at"`
	Items  []itemCountJSON `json:"items"`
}

type itemCountJSON struct {
	ID        int32 `json:"id"`
	FreeUnits int64 `json:"free_units"`
	HeldUnits int64 `json:"held_units"`
}

// saleEvents streams the current sale as server-sent events: a "sale"
// event at once and after every change (read at most once per second by
// the process's watcher), followed by an "items" event when items' counts
// changed, a "sale_error" event with the API's error body while no sale
// can be read, and a comment every heartbeat when nothing changes.
func (s *Server) saleEvents(c echo.Context) error {
	if s.live.ctx.Err() != nil {
		c.Response().Header().Set("Retry-After", "1") // as every 503: another server, or this one restarted
		return c.JSON(http.StatusServiceUnavailable, errorBody{Error: errorDetail{Code: "unavailable", Message: "the server is shutting down"}})
	}
	s.live.open.Add(1)
	defer s.live.open.Add(-1)
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	if c.Request().Method == http.MethodHead {
		return c.NoContent(http.StatusOK)
	}
	// ReadTimeout needs nothing: net/http clears the read deadline once the
	// request is read (TestEventStreamTimeoutsAndShutdown checks it).
	rc := http.NewResponseController(w)
	send := func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}

	sub := s.live.watch.Subscribe()
	defer sub.Close()
	w.WriteHeader(http.StatusOK)
	if send(fmt.Appendf(nil, "retry: %d\n\n", reconnectMillis)) != nil {
		return nil // the client is gone; nothing left to answer
	}
	heartbeat := time.NewTicker(s.live.heartbeat)
	defer heartbeat.Stop()
	ctx := c.Request().Context()
	for {
		var msg []byte
		select {
		case <-ctx.Done():
			return nil
		case <-s.live.ctx.Done():
			return nil
		case snap := <-sub.C:
			var err error
			if msg, err = s.live.event(snap, time.Now()); err != nil {
				return err
			}
			heartbeat.Reset(s.live.heartbeat)
		case <-heartbeat.C:
			msg = []byte(": heartbeat\n\n")
		}
		if send(msg) != nil {
			return nil
		}
	}
}

// event is one snapshot as events: each one's JSON holds no newline, so it
// fits one data line.
func (l *liveStreams) event(snap *salewatch.Snapshot, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	if snap.Err != nil {
		_, detail := apiError(snap.Err)
		return appendEvent(&b, "sale_error", errorBody{Error: detail})
	}
	body := saleEventJSON{saleJSON: toSaleJSON(snap.Summary), ReadAt: snap.ReadAt.UTC(), ServerTime: now.UTC()}
	if !snap.NextSaleStart.IsZero() {
		next := snap.NextSaleStart.UTC()
		body.NextSaleStartsAt = &next
	}
	if _, err := appendEvent(&b, "sale", body); err != nil {
		return nil, err
	}
	if len(snap.Items) > 0 {
		items, err := l.itemsEvent(snap)
		if err != nil {
			return nil, err
		}
		b.Write(items)
	}
	return b.Bytes(), nil
}

// encodedItems is a snapshot's "items" event, encoded once for every
// stream that sends it: after a herd it lists thousands of items.
type encodedItems struct {
	snap  *salewatch.Snapshot
	event []byte
}

func (l *liveStreams) itemsEvent(snap *salewatch.Snapshot) ([]byte, error) {
	if e := l.items.Load(); e != nil && e.snap == snap {
		return e.event, nil
	}
	body := itemsEventJSON{SaleID: snap.Summary.ID, ReadAt: snap.ItemsReadAt.UTC(), Items: make([]itemCountJSON, len(snap.Items))}
	for i, c := range snap.Items {
		body.Items[i] = itemCountJSON{ID: c.ItemID, FreeUnits: c.FreeUnits, HeldUnits: c.HeldUnits}
	}
	b, err := appendEvent(&bytes.Buffer{}, "items", body)
	if err != nil {
		return nil, err
	}
	l.items.Store(&encodedItems{snap: snap, event: b})
	return b, nil
}

func appendEvent(b *bytes.Buffer, name string, body any) ([]byte, error) {
	b.WriteString("event: " + name + "\ndata: ")
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, fmt.Errorf("encode %s event: %w", name, err)
	}
	b.WriteString("\n") // Encode ended the data line; an empty line ends the event
	return b.Bytes(), nil
}
