// Package webhook is the benchmark's receiver of the servers' webhooks: an
// HTTP endpoint on loopback that checks each delivery's signature as a
// shop's receiver would, answers at once, and records which events and
// which purchases arrived, so the benchmark can hold them against the
// database.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names and the event type of a committed purchase, as the server
// sends them.
const (
	HeaderSignature = "Flashsale-Signature"
	HeaderEventID   = "Flashsale-Event-Id"
	HeaderEventType = "Flashsale-Event-Type"
	PurchaseEvent   = "purchase.completed"
)

// maxBody bounds what a delivery may send: an event is a few hundred bytes.
const maxBody = 1 << 20

// NewSecret returns a fresh signing secret: 32 random bytes, hex.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Stats is what the receiver got so far.
type Stats struct {
	Requests      int64 // every request, whatever its fate
	Deliveries    int64 // signed and well-formed: answered 204
	Distinct      int64 // distinct event ids among the deliveries
	Duplicates    int64 // deliveries of an event id already received
	BadSignatures int64 // answered 401: no v1 matched the secret
	Malformed     int64 // signed, but not an event of the contract: answered 400
	// ByType counts distinct events per type.
	ByType map[string]int64
	// Purchases maps each purchase id named by a purchase.completed event
	// to the sale id of that event.
	Purchases map[int64]int64
	// RepeatedPurchases counts purchase.completed events (distinct ids)
	// naming a purchase an earlier event already named: each committed
	// purchase makes one event.
	RepeatedPurchases int64
	// LastPurchase is when the last purchase.completed event new to the
	// receiver arrived; zero before the first.
	LastPurchase time.Time
}

// Receiver is a running webhook endpoint.
type Receiver struct {
	secret []byte
	url    string
	srv    *http.Server
	served chan error

	mu   sync.Mutex
	st   Stats
	seen map[int64]struct{}
}

// Start listens on a free loopback port and serves deliveries signed with
// secret.
func Start(secret string) (*Receiver, error) {
	if secret == "" {
		return nil, errors.New("webhook receiver: empty secret")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: listen: %w", err)
	}
	r := &Receiver{
		secret: []byte(secret),
		url:    "http://" + ln.Addr().String() + "/webhooks",
		served: make(chan error, 1),
		seen:   make(map[int64]struct{}),
		st:     Stats{ByType: make(map[string]int64), Purchases: make(map[int64]int64)},
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { r.served <- r.srv.Serve(ln) }()
	return r, nil
}

// URL is where the servers are to POST their events.
func (r *Receiver) URL() string { return r.url }

// Close stops the endpoint; deliveries still in flight get their answer
// (or ctx's end).
func (r *Receiver) Close(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, r.srv.Close())
	}
	if serr := <-r.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("webhook receiver: close: %w", err)
	}
	return nil
}

// Stats returns a copy of what was received so far.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.ByType = maps.Clone(r.st.ByType)
	st.Purchases = maps.Clone(r.st.Purchases)
	return st
}

// Missing counts the purchases of ids no purchase.completed event named yet.
func (r *Receiver) Missing(ids []int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := r.st.Purchases[id]; !ok {
			n++
		}
	}
	return n
}

// event is the part of a delivery's body the receiver checks.
type event struct {
	ID       *int64 `json:"id"`
	Type     string `json:"type"`
	SaleID   *int64 `json:"sale_id"`
	Sequence *int64 `json:"sequence"`
	Data     struct {
		Purchase *struct {
			ID *int64 `json:"id"`
		} `json:"purchase"`
	} `json:"data"`
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Requests++
	if req.Method != http.MethodPost || err != nil {
		r.st.Malformed++
		http.Error(w, "want a POST of at most 1 MiB", http.StatusBadRequest)
		return
	}
	if !Verify(r.secret, req.Header.Get(HeaderSignature), body) {
		r.st.BadSignatures++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	ev, ok := parseEvent(req.Header, body)
	if !ok {
		r.st.Malformed++
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	r.st.Deliveries++
	if _, dup := r.seen[*ev.ID]; dup {
		r.st.Duplicates++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.seen[*ev.ID] = struct{}{}
	r.st.Distinct++
	r.st.ByType[ev.Type]++
	if ev.Type == PurchaseEvent {
		pid := *ev.Data.Purchase.ID
		if _, again := r.st.Purchases[pid]; again {
			r.st.RepeatedPurchases++
		} else {
			r.st.Purchases[pid] = *ev.SaleID
			r.st.LastPurchase = now
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseEvent reads a signed body as the contract's event, its headers
// agreeing with it.
func parseEvent(h http.Header, body []byte) (event, bool) {
	var ev event
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "application/json" {
		return ev, false
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == nil || ev.Type == "" || ev.SaleID == nil || ev.Sequence == nil {
		return ev, false
	}
	if h.Get(HeaderEventID) != strconv.FormatInt(*ev.ID, 10) || h.Get(HeaderEventType) != ev.Type {
		return ev, false
	}
	if ev.Type == PurchaseEvent && (ev.Data.Purchase == nil || ev.Data.Purchase.ID == nil) {
		return ev, false
	}
	return ev, true
}

// Verify checks a Flashsale-Signature header, "t=<unix>,v1=<hex>[,v1=...]",
// against body: one v1 must be hex(HMAC-SHA256(secret, "<t>.<body>")).
// There is one v1 per secret the sender holds, so that a receiver can
// rotate its secret.
func Verify(secret []byte, header string, body []byte) bool {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return false
		}
		switch k {
		case "t":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil || ts != "" {
				return false
			}
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	if ts == "" {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	ok := false
	for _, sig := range sigs {
		// hmac.Equal takes the same time wherever the bytes differ; every
		// v1 is compared, so the time says nothing about which matched.
		ok = hmac.Equal(want, sig) || ok
	}
	return ok
}
