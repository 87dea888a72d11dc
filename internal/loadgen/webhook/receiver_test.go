package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/webhook"
)

// sign is the contract's signature, computed here rather than by the
// package under test.
func sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	return hex.EncodeToString(mac.Sum(nil))
}

type delivery struct {
	id      int64
	typ     string
	body    string // default: an event of id and typ, naming purchase id+1000 when a purchase
	sig     string // default: "t=<now>,v1=<sign(secret)>"
	eventID string // Flashsale-Event-Id; default: id
}

func post(t *testing.T, url, secret string, d delivery) int {
	t.Helper()
	if d.body == "" {
		data := `{}`
		if d.typ == webhook.PurchaseEvent {
			data = fmt.Sprintf(`{"purchase":{"id":%d,"user_id":"u","code":"7.x","item":3,"price":"1.00"}}`, d.id+1000)
		}
		d.body = fmt.Sprintf(`{"id":%d,"type":%q,"sale_id":7,"sequence":%d,"created_at":"2026-12-01T10:00:00Z","data":%s}`,
			d.id, d.typ, d.id, data)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	if d.sig == "" {
		d.sig = "t=" + ts + ",v1=" + sign(secret, ts, []byte(d.body))
	}
	if d.eventID == "" {
		d.eventID = strconv.FormatInt(d.id, 10)
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(d.body))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderEventID, d.eventID)
	req.Header.Set(webhook.HeaderEventType, d.typ)
	req.Header.Set(webhook.HeaderSignature, d.sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err) // not Fatal: senders run on goroutines of their own
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReceiver: signed events are accepted once each and their purchases
// recorded; forged, tampered or unsigned ones are rejected and counted;
// deliveries that disagree with the contract are counted as malformed.
func TestReceiver(t *testing.T) {
	t.Parallel()
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 64 {
		t.Fatalf("secret %q: want 32 bytes in hex", secret)
	}
	r, err := webhook.Start(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	url := r.URL()
	other, _ := webhook.NewSecret()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	body := `{"id":50,"type":"sale.paused","sale_id":7,"sequence":50,"created_at":"2026-12-01T10:00:00Z","data":{}}`
	steps := []struct {
		name string
		d    delivery
		want int
	}{
		{"purchase", delivery{id: 1, typ: webhook.PurchaseEvent}, http.StatusNoContent},
		{"its retry", delivery{id: 1, typ: webhook.PurchaseEvent}, http.StatusNoContent},
		{"another purchase", delivery{id: 2, typ: webhook.PurchaseEvent}, http.StatusNoContent},
		{"sold out", delivery{id: 3, typ: "sale.sold_out"}, http.StatusNoContent},
		{"signed by two secrets, ours second", delivery{id: 50, typ: "sale.paused", body: body,
			sig: "t=" + ts + ",v1=" + sign(other, ts, []byte(body)) + ",v1=" + sign(secret, ts, []byte(body))}, http.StatusNoContent},
		{"a second event for purchase 1001", delivery{id: 4, typ: webhook.PurchaseEvent,
			body: `{"id":4,"type":"purchase.completed","sale_id":7,"sequence":4,"created_at":"2026-12-01T10:00:00Z","data":{"purchase":{"id":1001}}}`},
			http.StatusNoContent},
		{"wrong secret", delivery{id: 5, typ: webhook.PurchaseEvent, sig: "t=" + ts + ",v1=" + sign(other, ts, []byte("x"))}, http.StatusUnauthorized},
		{"tampered body", delivery{id: 6, typ: webhook.PurchaseEvent, body: strings.Replace(body, "50", "51", 1),
			sig: "t=" + ts + ",v1=" + sign(secret, ts, []byte(body))}, http.StatusUnauthorized},
		{"signed for another time", delivery{id: 50, typ: "sale.paused", body: body,
			sig: "t=1,v1=" + sign(secret, ts, []byte(body))}, http.StatusUnauthorized},
		{"no timestamp", delivery{id: 50, typ: "sale.paused", body: body, sig: "v1=" + sign(secret, ts, []byte(body))}, http.StatusUnauthorized},
		{"no signature", delivery{id: 50, typ: "sale.paused", body: body, sig: "t=" + ts}, http.StatusUnauthorized},
		{"header names another event", delivery{id: 7, typ: "sale.ended", eventID: "8"}, http.StatusBadRequest},
		{"purchase without its id", delivery{id: 9, typ: webhook.PurchaseEvent,
			body: `{"id":9,"type":"purchase.completed","sale_id":7,"sequence":9,"created_at":"2026-12-01T10:00:00Z","data":{"purchase":{}}}`},
			http.StatusBadRequest},
	}
	var lastPurchase time.Time
	for _, s := range steps {
		if got := post(t, url, secret, s.d); got != s.want {
			t.Fatalf("%s: status %d, want %d", s.name, got, s.want)
		}
		if s.name == "another purchase" {
			lastPurchase = r.Stats().LastPurchase
		}
	}
	st := r.Stats()
	want := webhook.Stats{
		Requests: int64(len(steps)), Deliveries: 6, Distinct: 5, Duplicates: 1, BadSignatures: 5, Malformed: 2,
		RepeatedPurchases: 1,
	}
	if st.Requests != want.Requests || st.Deliveries != want.Deliveries || st.Distinct != want.Distinct ||
		st.Duplicates != want.Duplicates || st.BadSignatures != want.BadSignatures || st.Malformed != want.Malformed ||
		st.RepeatedPurchases != want.RepeatedPurchases {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	if len(st.ByType) != 3 || st.ByType[webhook.PurchaseEvent] != 3 || st.ByType["sale.sold_out"] != 1 || st.ByType["sale.paused"] != 1 {
		t.Fatalf("by type: %v", st.ByType)
	}
	if len(st.Purchases) != 2 || st.Purchases[1001] != 7 || st.Purchases[1002] != 7 {
		t.Fatalf("purchases: %v", st.Purchases)
	}
	// Neither a retry nor a second event for a known purchase is news.
	if lastPurchase.IsZero() || !st.LastPurchase.Equal(lastPurchase) {
		t.Fatalf("last purchase event at %v, want %v", st.LastPurchase, lastPurchase)
	}
	if n := r.Missing([]int64{1001, 1002, 1003, 1004}); n != 2 {
		t.Fatalf("missing %d of 1001..1004, want 2", n)
	}
}

// TestReceiverConcurrent: deliveries from many connections at once, each
// event sent three times, are counted once each.
func TestReceiverConcurrent(t *testing.T) {
	t.Parallel()
	secret, _ := webhook.NewSecret()
	r, err := webhook.Start(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	const events, senders = 300, 8
	var wg sync.WaitGroup
	codes := make(chan int, events*3)
	for s := range senders {
		wg.Go(func() {
			for id := int64(1 + s); id <= events; id += senders {
				for range 3 {
					codes <- post(t, r.URL(), secret, delivery{id: id, typ: webhook.PurchaseEvent})
				}
			}
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusNoContent {
			t.Fatalf("status %d", c)
		}
	}
	st := r.Stats()
	if st.Requests != 3*events || st.Distinct != events || st.Duplicates != 2*events || len(st.Purchases) != events ||
		st.BadSignatures != 0 || st.Malformed != 0 {
		t.Fatalf("stats: requests %d distinct %d duplicates %d purchases %d bad %d malformed %d",
			st.Requests, st.Distinct, st.Duplicates, len(st.Purchases), st.BadSignatures, st.Malformed)
	}
}
