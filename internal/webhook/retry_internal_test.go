package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The default day of retries: 10s doubling to 2560s (nine delays, 85m10s),
// then hourly; 23 hours fill the rest of the day, so 32 waits between 33
// attempts.
func TestRetryScheduleOfADay(t *testing.T) {
	const day = 24 * time.Hour
	want := []time.Duration{10, 20, 40, 80, 160, 320, 640, 1280, 2560}
	for i, w := range want {
		if got := retryDelay(day, i+1); got != w*time.Second {
			t.Errorf("retryDelay(24h, %d) = %v, want %v", i+1, got, w*time.Second)
		}
	}
	for attempt := len(want) + 1; attempt <= 40; attempt++ {
		if got := retryDelay(day, attempt); got != time.Hour {
			t.Errorf("retryDelay(24h, %d) = %v, want 1h", attempt, got)
		}
	}
	if got := maxAttempts(day); got != 33 {
		t.Errorf("maxAttempts(24h) = %d, want 33", got)
	}
	checkSpansRetryFor(t, day)
}

func TestRetryScheduleOfShortRetryFor(t *testing.T) {
	cases := []struct {
		retryFor time.Duration
		delays   []time.Duration // the first attempts' waits
		attempts int
	}{
		// RetryFor/20 below the 100ms floor; ceiling RetryFor/4.
		{time.Second, []time.Duration{100, 200, 250, 250, 250}, 6},
		{2 * time.Second, []time.Duration{100, 200, 400, 500, 500, 500}, 7},
		// base 300ms, ceiling 1.5s: 0.3+0.6+1.2+1.5+1.5+1.5 = 6.6s.
		{6 * time.Second, []time.Duration{300, 600, 1200, 1500, 1500, 1500}, 7},
		// base capped at 10s, ceiling 1h: the same start as a day.
		{720 * time.Hour, []time.Duration{10_000, 20_000, 40_000}, 0},
	}
	for _, c := range cases {
		for i, w := range c.delays {
			if got := retryDelay(c.retryFor, i+1); got != w*time.Millisecond {
				t.Errorf("retryDelay(%v, %d) = %v, want %v", c.retryFor, i+1, got, w*time.Millisecond)
			}
		}
		if c.attempts != 0 {
			if got := maxAttempts(c.retryFor); got != c.attempts {
				t.Errorf("maxAttempts(%v) = %d, want %d", c.retryFor, got, c.attempts)
			}
		}
		checkSpansRetryFor(t, c.retryFor)
	}
}

// checkSpansRetryFor: the waits between maxAttempts attempts cover
// RetryFor, and one attempt fewer would not.
func checkSpansRetryFor(t *testing.T, retryFor time.Duration) {
	t.Helper()
	n := maxAttempts(retryFor)
	var total time.Duration
	for a := 1; a < n; a++ {
		d := retryDelay(retryFor, a)
		if a > 1 && d < retryDelay(retryFor, a-1) {
			t.Errorf("retryDelay(%v, %d) = %v shrinks from %v", retryFor, a, d, retryDelay(retryFor, a-1))
		}
		if d > time.Hour || d <= 0 {
			t.Errorf("retryDelay(%v, %d) = %v, want in (0, 1h]", retryFor, a, d)
		}
		total += d
	}
	if last := retryDelay(retryFor, n-1); total < retryFor || total-last >= retryFor {
		t.Errorf("RetryFor %v: %d attempts wait %v in all (%v without the last wait), want just over RetryFor",
			retryFor, n, total, total-last)
	}
}

func TestRetryDelayEveryRetryForInConfigRange(t *testing.T) {
	// WEBHOOK_RETRY_FOR is 1s..720h (internal/config).
	for _, rf := range []time.Duration{time.Second, 3 * time.Second, time.Minute, time.Hour, 24 * time.Hour, 720 * time.Hour} {
		checkSpansRetryFor(t, rf)
		if n := maxAttempts(rf); n < 2 || n >= 1000 {
			t.Errorf("maxAttempts(%v) = %d, want a retry or more and under River's cap", rf, n)
		}
	}
}

func TestJitterStaysWithinTwentyPercent(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 100 * time.Millisecond, 10 * time.Second, time.Hour} {
		lo, hi := d*4/5, d*6/5
		seenLow, seenHigh := false, false
		for range 2000 {
			j := jitter(d)
			if j < lo || j > hi {
				t.Fatalf("jitter(%v) = %v, want in [%v, %v]", d, j, lo, hi)
			}
			seenLow = seenLow || j < d
			seenHigh = seenHigh || j > d
		}
		// Spread both ways, or a burst of failures retries in one burst.
		if d >= 100*time.Millisecond && (!seenLow || !seenHigh) {
			t.Errorf("jitter(%v) over 2000 draws: below %v, above %v; want both", d, seenLow, seenHigh)
		}
	}
}

const (
	oldSecret = "old-secret-0123456789abcdef"
	newSecret = "new-secret-fedcba9876543210"
)

// hmacHex is the v1 computed without this package's code.
func hmacHex(secret string, unix int64, body string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(unix, 10) + "." + body))
	return hex.EncodeToString(h.Sum(nil))
}

func TestSignIsTheDocumentedHeader(t *testing.T) {
	at := time.Unix(1_750_000_000, 999_000_000)
	body := `{"id":1,"type":"sale.started"}`
	got := Sign([]string{oldSecret, newSecret}, at, []byte(body))
	want := "t=1750000000,v1=" + hmacHex(oldSecret, at.Unix(), body) + ",v1=" + hmacHex(newSecret, at.Unix(), body)
	if got != want {
		t.Fatalf("Sign = %q\nwant %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Now()
	body := []byte(`{"id":42,"type":"purchase.completed"}`)
	both := Sign([]string{oldSecret, newSecret}, now, body)
	const tolerance = 5 * time.Minute
	cases := []struct {
		name    string
		header  string
		body    []byte
		secrets []string
		now     time.Time
		ok      bool
	}{
		{"round trip", Sign([]string{oldSecret}, now, body), body, []string{oldSecret}, now, true},
		// Rotation: a receiver on either side of it verifies.
		{"rotation, receiver knows the old secret", both, body, []string{oldSecret}, now, true},
		{"rotation, receiver knows the new secret", both, body, []string{newSecret}, now, true},
		{"receiver knows both, sender only the new", Sign([]string{newSecret}, now, body), body, []string{oldSecret, newSecret}, now, true},
		{"another secret", both, body, []string{"some-other-secret-0123"}, now, false},
		{"body changed", both, []byte(`{"id":43,"type":"purchase.completed"}`), []string{oldSecret}, now, false},
		{"timestamp changed", strings.Replace(both, "t="+strconv.FormatInt(now.Unix(), 10), "t="+strconv.FormatInt(now.Unix()+1, 10), 1),
			body, []string{oldSecret}, now, false},
		{"within tolerance", both, body, []string{oldSecret}, now.Add(tolerance - time.Second), true},
		{"replayed after tolerance", both, body, []string{oldSecret}, now.Add(tolerance + 2*time.Second), false},
		{"signed too far ahead", both, body, []string{oldSecret}, now.Add(-tolerance - 2*time.Second), false},
		{"no timestamp", strings.SplitN(both, ",", 2)[1], body, []string{oldSecret}, now, false},
		{"no signature", "t=" + strconv.FormatInt(now.Unix(), 10), body, []string{oldSecret}, now, false},
		{"empty header", "", body, []string{oldSecret}, now, false},
		{"no secrets", both, body, nil, now, false},
		{"spaces and other schemes tolerated", "t=" + strconv.FormatInt(now.Unix(), 10) + ", v0=abc, v1=zz, v1=" +
			hmacHex(newSecret, now.Unix(), string(body)), body, []string{newSecret}, now, true},
	}
	for _, c := range cases {
		err := Verify(c.header, c.body, c.secrets, tolerance, c.now)
		if (err == nil) != c.ok {
			t.Errorf("%s: Verify = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrSignature) {
			t.Errorf("%s: Verify error %v is not ErrSignature", c.name, err)
		}
	}
}
