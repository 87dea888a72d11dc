// Package apitest runs the real HTTP API for tests (Start) and is their
// client side: requests, the checks every answer gets, and the checkout
// and purchase steps tests build on. Tests of several packages drive the API, so it cannot be a _test file.
package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// Client bounds every request: a hung server fails the test instead of
// stalling it until the global timeout.
var Client = &http.Client{Timeout: 15 * time.Second}

// Reply is an answer read in full, so that status, headers and body can all
// be checked after the connection is gone.
type Reply struct {
	Status int
	Header http.Header
	// Body is nil unless the answer is a JSON object: Check and Expect
	// fail on nil, so an answer that is not one cannot slip through.
	Body map[string]any
	Raw  []byte
	// Took runs from sending the request to reading the last byte.
	Took time.Duration
}

// Send fails no test, so it can run on goroutines other than the test's,
// where t.Fatal must not be called. Its error is only for a request that got
// no complete answer; the answer itself is for the caller to check.
func Send(c *http.Client, method, url, contentType string, body io.Reader) (Reply, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return SendRequest(c, req)
}

// SendRequest is Send for a request with headers of its own.
func SendRequest(c *http.Client, req *http.Request) (Reply, error) {
	start := time.Now()
	method, url := req.Method, req.URL.String()
	resp, err := c.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: object(raw), Raw: raw, Took: time.Since(start)}, nil
}

// object is nil for anything but a JSON object.
func object(raw []byte) map[string]any {
	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil {
		return nil
	}
	return obj
}

// Do is Send on Client for the test's own goroutine.
func Do(t testing.TB, method, url, contentType string, body io.Reader) Reply {
	t.Helper()
	r, err := Send(Client, method, url, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func Get(t testing.TB, url string) Reply {
	t.Helper()
	return Do(t, http.MethodGet, url, "", nil)
}

// GetOK fetches a JSON object that must answer 200.
func GetOK(t testing.TB, url string) map[string]any {
	t.Helper()
	r := Get(t, url)
	Expect(t, "GET "+url, r, http.StatusOK, "")
	return r.Body
}
