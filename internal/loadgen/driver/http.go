package driver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// HTTPDriver drives the service's HTTP API. Each worker owns one
// keep-alive connection and speaks the little HTTP/1.1 these two requests
// need (a POST without a body, an answer with a Content-Length) instead of
// using net/http's client, which costs more CPU per request: every
// microsecond the load generator spends is taken from the server and
// PostgreSQL it measures on the same machine. With several servers, workers are spread over
// them in turn, the way a round-robin balancer spreads connections.
type HTTPDriver struct {
	targets []httpTarget
	timeout time.Duration
	next    atomic.Uint64
}

type httpTarget struct {
	addr     string // host:port
	host     string // Host header
	checkout string // "/checkout?user_id="
	purchase string // "/purchase?code="
}

// NewHTTP drives the API at baseURLs (http only, one per server);
// each request may take up to timeout.
func NewHTTP(baseURLs []string, timeout time.Duration) (*HTTPDriver, error) {
	if len(baseURLs) == 0 {
		return nil, errors.New("loadgen needs a server URL")
	}
	d := &HTTPDriver{timeout: timeout}
	for _, b := range baseURLs {
		u, err := url.Parse(b)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("loadgen needs an http://host:port URL, got %q", b)
		}
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
		base := strings.TrimRight(u.Path, "/")
		d.targets = append(d.targets, httpTarget{
			addr: addr, host: u.Host, checkout: base + "/checkout?user_id=", purchase: base + "/purchase?code=",
		})
	}
	return d, nil
}

// NewWorker implements Driver.
func (d *HTTPDriver) NewWorker() Worker {
	t := &d.targets[(d.next.Add(1)-1)%uint64(len(d.targets))]
	return &httpWorker{t: t, timeout: d.timeout, req: make([]byte, 0, 256)}
}

type httpWorker struct {
	t       *httpTarget
	timeout time.Duration
	conn    net.Conn
	r       *bufio.Reader
	req     []byte
	body    []byte
}

// User ids and hold codes that loadgen sends need no escaping: user ids are
// made of [a-z0-9-] and codes are base64url.
func (w *httpWorker) Checkout(ctx context.Context, userID string, itemID int64) Result {
	w.start(w.t.checkout)
	w.req = append(w.req, userID...)
	w.req = append(w.req, "&id="...)
	w.req = strconv.AppendInt(w.req, itemID, 10)
	return w.post(ctx, http.StatusCreated, Held)
}

func (w *httpWorker) Purchase(ctx context.Context, code string) Result {
	w.start(w.t.purchase)
	w.req = append(w.req, code...)
	return w.post(ctx, http.StatusOK, Purchased)
}

func (w *httpWorker) start(path string) {
	w.req = append(w.req[:0], "POST "...)
	w.req = append(w.req, path...)
}

func (w *httpWorker) post(ctx context.Context, okStatus int, okOutcome string) Result {
	w.req = append(w.req, " HTTP/1.1\r\nHost: "...)
	w.req = append(w.req, w.t.host...)
	w.req = append(w.req, "\r\nContent-Length: 0\r\n\r\n"...)
	status, body, err := w.roundTrip(ctx)
	if err != nil {
		w.close()
		return Result{Err: err}
	}
	r := Result{Status: status}
	if status == okStatus {
		r.Outcome = okOutcome
		if okOutcome == Held {
			// The first "code" of a checkout answer is the hold code.
			r.Code = string(jsonString(body, `"code":"`))
		} else {
			r.PurchaseID = jsonInt(body, `"purchase_id":`)
		}
		return r
	}
	r.Outcome = ErrorOutcome(status, body)
	return r
}

// roundTrip sends w.req on the worker's connection (dialling it first if
// needed) and reads one answer.
func (w *httpWorker) roundTrip(ctx context.Context) (int, []byte, error) {
	deadline := time.Now().Add(w.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if w.conn == nil {
		c, err := (&net.Dialer{Deadline: deadline}).DialContext(ctx, "tcp", w.t.addr)
		if err != nil {
			return 0, nil, err
		}
		w.conn, w.r = c, bufio.NewReaderSize(c, 4096)
	}
	if err := w.conn.SetDeadline(deadline); err != nil {
		return 0, nil, err
	}
	if _, err := w.conn.Write(w.req); err != nil {
		return 0, nil, err
	}
	line, err := w.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length, keep := -1, true
	for {
		h, err := w.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, nil, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, nil, fmt.Errorf("unexpected Transfer-Encoding %q", value)
		}
	}
	if length < 0 {
		return 0, nil, errors.New("answer without Content-Length")
	}
	if cap(w.body) < length {
		w.body = make([]byte, length)
	}
	w.body = w.body[:length]
	if _, err := io.ReadFull(w.r, w.body); err != nil {
		return 0, nil, err
	}
	if !keep {
		w.close()
	}
	return status, w.body, nil
}

// Close implements Worker.
func (w *httpWorker) Close() { w.close() }

func (w *httpWorker) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn, w.r = nil, nil
	}
}

// jsonString returns the string value that follows key (which includes the
// opening quote of the value), or nil. The values read here hold no escapes.
func jsonString(body []byte, key string) []byte {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return nil
	}
	v := body[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}

// jsonInt returns the integer that follows key, or 0.
func jsonInt(body []byte, key string) int64 {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0
	}
	var n int64
	for _, c := range body[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
