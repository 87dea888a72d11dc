package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// NewHTTPClient returns the one client every worker shares: keep-alive
// connections, at most conns of them, all kept when idle.
func NewHTTPClient(conns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// HTTPDriver drives the service's HTTP API.
type HTTPDriver struct {
	client   *http.Client
	checkout string // base + "/checkout?user_id="
	purchase string // base + "/purchase?code="
}

// NewHTTPDriver drives the API at baseURL (no trailing slash needed).
func NewHTTPDriver(client *http.Client, baseURL string) *HTTPDriver {
	base := strings.TrimRight(baseURL, "/")
	return &HTTPDriver{client: client, checkout: base + "/checkout?user_id=", purchase: base + "/purchase?code="}
}

// NewWorker implements Driver.
func (d *HTTPDriver) NewWorker() Worker {
	return &httpWorker{d: d, url: make([]byte, 0, 256)}
}

type httpWorker struct {
	d    *HTTPDriver
	url  []byte
	body bytes.Buffer
}

// User ids and hold codes that loadgen sends need no escaping: user ids are
// made of [a-z0-9-] and codes are base64url.
func (w *httpWorker) Checkout(ctx context.Context, userID string, itemID int64) Result {
	w.url = append(w.url[:0], w.d.checkout...)
	w.url = append(w.url, userID...)
	w.url = append(w.url, "&id="...)
	w.url = strconv.AppendInt(w.url, itemID, 10)
	return w.post(ctx, http.StatusCreated, outHeld)
}

func (w *httpWorker) Purchase(ctx context.Context, code string) Result {
	w.url = append(w.url[:0], w.d.purchase...)
	w.url = append(w.url, code...)
	return w.post(ctx, http.StatusOK, outPurchased)
}

func (w *httpWorker) post(ctx context.Context, okStatus int, okOutcome string) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, string(w.url), nil)
	if err != nil {
		return Result{Err: err}
	}
	resp, err := w.d.client.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	w.body.Reset()
	_, err = w.body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Result{Err: fmt.Errorf("read body of %d answer: %w", resp.StatusCode, err)}
	}
	body := w.body.Bytes()
	r := Result{Status: resp.StatusCode}
	if resp.StatusCode == okStatus {
		r.Outcome = okOutcome
		if okOutcome == outHeld {
			// The first "code" of a checkout answer is the hold code.
			r.Code = string(jsonString(body, `"code":"`))
		} else {
			r.PurchaseID = jsonInt(body, `"purchase_id":`)
		}
		return r
	}
	// {"error":{"code":"sold_out",...}}: the first "code" is the error code.
	if c := jsonString(body, `"code":"`); c != nil {
		r.Outcome = intern(c)
	} else {
		r.Outcome = "http_" + strconv.Itoa(resp.StatusCode)
	}
	return r
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
