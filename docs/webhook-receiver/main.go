// Command webhook-receiver is a shop's end of the webhooks, as
// docs/webhooks.md describes it: it checks each delivery's signature and
// handles each event once, however often it is delivered.
//
//	webhook-receiver -addr localhost:9000 -secrets "$WEBHOOK_SECRET" -dir /tmp/hooks
//
// -secrets takes the server's WEBHOOK_SECRET list. Each delivery it
// verifies is a line on stdout, and, with -dir, its body and signature are
// kept as DIR/<id>.json and DIR/<id>.signature. It answers 204 to a
// delivery it verified, a repeated one too, and 400 to any other.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "localhost:9000", "address to listen on")
	secrets := flag.String("secrets", "", "the secrets deliveries may be signed with, comma-separated (the server's WEBHOOK_SECRET)")
	dir := flag.String("dir", "", "where to keep each event's body and signature; nowhere when empty")
	flag.Parse()
	if *secrets == "" {
		log.Fatal("webhook-receiver: -secrets is required")
	}
	r := &receiver{secrets: strings.Split(*secrets, ","), dir: *dir, handled: map[int64]bool{}}
	log.Fatal(http.ListenAndServe(*addr, r))
}

type receiver struct {
	secrets []string
	dir     string
	mu      sync.Mutex
	// handled is what a shop keeps in its database, written in the
	// transaction that acts on the event: then a delivery repeated after
	// a crash finds it.
	handled map[int64]bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST webhook deliveries here", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	signature := r.Header.Get("Flashsale-Signature")
	// Verified on the bytes as they came, before anything parses them.
	if err := verify(signature, body, rc.secrets, time.Now()); err != nil {
		fmt.Printf("refused a delivery of event %s: %v\n", r.Header.Get("Flashsale-Event-Id"), err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var event struct {
		ID       int64  `json:"id"`
		Type     string `json:"type"`
		SaleID   int64  `json:"sale_id"`
		Sequence int64  `json:"sequence"`
	}
	if err := json.Unmarshal(body, &event); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.dir != "" {
		base := filepath.Join(rc.dir, strconv.FormatInt(event.ID, 10))
		if err := errors.Join(os.WriteFile(base+".json", body, 0o644), os.WriteFile(base+".signature", []byte(signature+"\n"), 0o644)); err != nil {
			// Not stored: a 5xx makes the server deliver it again later.
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	outcome := "handled"
	if rc.handled[event.ID] {
		outcome = "already handled" // answered 2xx all the same, or it comes again
	}
	rc.handled[event.ID] = true
	fmt.Printf("event %d %s (sale %d, sequence %d), attempt %s: %s\n", event.ID, event.Type, event.SaleID, event.Sequence,
		r.Header.Get("Flashsale-Delivery-Attempt"), outcome)
	w.WriteHeader(http.StatusNoContent)
}

// verify checks a delivery's Flashsale-Signature header against its body,
// the bytes as they arrived: some v1 must be the HMAC-SHA256 of "<t>.<body>"
// under one of the secrets, and t within five minutes of now, so that a
// delivery copied on its way cannot be played again later.
func verify(header string, body []byte, secrets []string, now time.Time) error {
	var t string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		key, value, _ := strings.Cut(part, "=")
		switch key {
		case "t":
			t = value
		case "v1":
			if sig, err := hex.DecodeString(value); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sent, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return errors.New("no t= in the signature")
	}
	if age := now.Sub(time.Unix(sent, 0)); age > 5*time.Minute || age < -5*time.Minute {
		return fmt.Errorf("signed %s ago: a replay?", age.Round(time.Second))
	}
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(t + "."))
		mac.Write(body)
		want := mac.Sum(nil)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return nil
			}
		}
	}
	return errors.New("no v1 matches any secret")
}
