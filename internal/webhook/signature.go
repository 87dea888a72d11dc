package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a delivery's signatures, in the style of
// Stripe's: "t=<unix seconds>,v1=<hex>[,v1=<hex>...]", where each v1 is
// HMAC-SHA256, keyed with one of the secrets, of "<t>.<body>". Signing the
// time with the body lets a receiver refuse a replay of an old delivery;
// one v1 per secret lets secrets rotate without a window where a receiver
// refuses good deliveries (docs/webhooks.md).
const SignatureHeader = "Flashsale-Signature"

// Sign returns the SignatureHeader value of body sent at t, with one v1
// per secret, in order.
func Sign(secrets []string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		b.WriteString(",v1=" + hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// ErrSignature: the header is not a valid signature of the body by any of
// the secrets, or is older than the tolerance.
var ErrSignature = errors.New("webhook signature does not verify")

// Verify checks header against body as a receiver does: some v1 must be the
// HMAC of "<t>.<body>" with one of secrets, and t within tolerance of now.
func Verify(header string, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no timestamp", ErrSignature)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed %s ago, more than %s", ErrSignature, age.Round(time.Second), tolerance)
	}
	for _, secret := range secrets {
		want := mac(secret, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no v1 matches", ErrSignature)
}
