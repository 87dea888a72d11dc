package spectest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
)

// maxKept bounds what is kept of a body to check it. The API's largest
// answer, a page of 1000 items, is about 150 KB; a body past the bound is
// still passed through whole, only not checked.
const maxKept = 4 << 20

// Wrap serves next with every exchange checked against the document (see
// Spec.Check), each problem reported with t.Errorf. It is the handler to
// give httptest.NewServer in place of the API's own.
func Wrap(t testing.TB, next http.Handler) http.Handler {
	t.Helper()
	spec, err := Load()
	if err != nil {
		t.Fatalf("spectest: %v", err)
	}
	return spec.Handler(t, next)
}

// maxPending bounds the bytes of exchanges kept for checking later; past
// it they are checked at once. The heaviest test (a four-second storm of
// checkouts) keeps a few megabytes.
const maxPending = 64 << 20

// Handler is Wrap with this Spec. Answers are passed through as they are
// written, flushes included, so streams stay streams.
//
// The checks wait until t's cleanup, when the server has closed: checking
// inline would delay every answer (net/http sends a buffered answer only
// when the handler returns), and checking alongside would take CPU from the
// server and PostgreSQL while timing-sensitive tests run (one-second holds,
// pool timeouts under load) on a machine of two cores. The server must be
// closed before t's cleanups run, as it is when its own t.Cleanup(hs.Close)
// is registered after this call.
func (s *Spec) Handler(t testing.TB, next http.Handler) http.Handler {
	exchanges := make(chan Exchange, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var pending []Exchange
		size := 0
		for x := range exchanges {
			pending = append(pending, x)
			if size += x.size(); size > maxPending {
				s.report(t, pending)
				pending, size = nil, 0
			}
		}
		s.report(t, pending)
	}()
	t.Cleanup(func() {
		close(exchanges)
		<-done
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server may change the request (a middleware drops an odd
		// X-Request-ID): check the one the client sent.
		// Checked after the request's context is cancelled, so not with it.
		x := Exchange{Request: r.Clone(context.WithoutCancel(r.Context()))}
		x.RequestBody, x.RequestBodyPartial, r.Body = keepBody(r.Body)
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 { // nothing written: net/http sends 200
			rec.WriteHeader(http.StatusOK)
		}
		x.Status, x.Header, x.Body, x.BodyPartial = rec.status, rec.header, rec.body.Bytes(), rec.partial
		exchanges <- x
	})
}

// report checks each exchange and reports its problems, from any goroutine:
// t.Errorf is safe there.
func (s *Spec) report(t testing.TB, xs []Exchange) {
	for _, x := range xs {
		for _, p := range s.Check(x) {
			t.Errorf("openapi: %s %s answered %d: %s", x.Request.Method, x.Request.URL.RequestURI(), x.Status, p)
		}
	}
}

// size is about what x keeps alive.
func (x Exchange) size() int { return 2<<10 + len(x.RequestBody) + len(x.Body) }

// keepBody reads the start of a request body to check it and returns a body
// that gives the server the same bytes, then the rest, or the read error,
// as the client sent them.
func keepBody(body io.ReadCloser) (kept []byte, partial bool, forServer io.ReadCloser) {
	if body == nil || body == http.NoBody {
		return nil, false, body
	}
	kept, err := io.ReadAll(io.LimitReader(body, maxKept+1))
	rest := io.Reader(body)
	switch {
	case err != nil:
		rest, partial = errReader{err}, true
	case len(kept) > maxKept:
		partial = true
	default:
		rest = http.NoBody
	}
	return kept, partial, struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(kept), rest), body}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// recorder passes an answer through while keeping its status, headers and
// (up to maxKept, and never for an event stream) its body.
type recorder struct {
	http.ResponseWriter
	status  int
	header  http.Header
	body    bytes.Buffer
	partial bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 { // 1xx answers are not the answer
		r.status, r.header = code, r.ResponseWriter.Header().Clone()
		r.partial = isEventStream(r.header)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if !r.partial {
		if r.body.Len()+len(p) > maxKept {
			r.partial = true
		} else {
			r.body.Write(p)
		}
	}
	return r.ResponseWriter.Write(p)
}

// Flush sends what was written at once, as the wrapped writer would: an
// event stream must reach the client event by event.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's own writer
// (deadlines, hijacking).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
