package main

import (
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/webhook"
)

// TestVerifyWhatTheServerSigns: the receiver's verify, which
// docs/webhooks.md shows, accepts what the server signs (webhook.Sign)
// with any of its secrets, and nothing else.
func TestVerifyWhatTheServerSigns(t *testing.T) {
	t.Parallel()
	const oldSecret, newSecret = "old-secret-0123456789", "new-secret-0123456789"
	body := []byte(`{"id":1,"type":"sale.started"}`)
	now := time.Now()
	rotating := webhook.Sign([]string{newSecret, oldSecret}, now, body)
	for what, c := range map[string]struct {
		header  string
		body    []byte
		secrets []string
		at      time.Time
		ok      bool
	}{
		"one secret":                     {webhook.Sign([]string{oldSecret}, now, body), body, []string{oldSecret}, now, true},
		"rotating, receiver has the old": {rotating, body, []string{oldSecret}, now, true},
		"rotating, receiver has the new": {rotating, body, []string{newSecret}, now, true},
		"receiver has both":              {webhook.Sign([]string{newSecret}, now, body), body, []string{oldSecret, newSecret}, now, true},
		"another secret":                 {rotating, body, []string{"another-secret-0123456789"}, now, false},
		"another body":                   {rotating, []byte(strings.Replace(string(body), "1", "2", 1)), []string{oldSecret}, now, false},
		"body re-encoded":                {rotating, []byte(`{"id": 1, "type": "sale.started"}`), []string{oldSecret}, now, false},
		"replayed an hour later":         {rotating, body, []string{oldSecret}, now.Add(time.Hour), false},
		"another time":                   {strings.Replace(rotating, "t=", "t=1", 1), body, []string{oldSecret}, now, false},
		"no signature":                   {"", body, []string{oldSecret}, now, false},
	} {
		err := verify(c.header, c.body, c.secrets, c.at)
		if (err == nil) != c.ok {
			t.Errorf("%s: verify = %v, want ok %v", what, err, c.ok)
		}
		// The server's own Verify agrees.
		if werr := webhook.Verify(c.header, c.body, c.secrets, 5*time.Minute, c.at); (werr == nil) != c.ok {
			t.Errorf("%s: webhook.Verify = %v, want ok %v", what, werr, c.ok)
		}
	}
}
