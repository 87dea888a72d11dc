package httpapi_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// TestExpiryRacesUnderLoad drives the path where checkout_batch and
// purchase_batch meet hardest: holds of one second, half of them bought only
// around the instant they expire, while a storm of checkouts by other users
// re-claims every unit that falls free. A deadlock or a failed batch shows up
// as a 5xx; a purchase that won against expiry (or against a re-claim) when
// it should have lost shows up in the invariants checked in the database.
func TestExpiryRacesUnderLoad(t *testing.T) {
	t.Parallel()
	const (
		units, items, limit = 60, 6, 3
		users, workers      = 40, 150
		ttl                 = time.Second
		storm               = 4 * time.Second
		// Delayed purchases go out within jitter of the hold's expiry.
		jitter = 5 * time.Millisecond
	)
	srv, saleID, client := startLoaded(t, sale.Settings{Units: units, Items: items, PerUserLimit: limit, HoldTTL: ttl}, workers)

	// answer is one request and what came back.
	type answer struct {
		purchase   bool
		user       string
		item       int
		code       string    // purchase: the code bought
		expires    time.Time // purchase: the hold's expires_at (zero if unreadable)
		delayed    bool      // purchase: sent around expires rather than at once
		sent       time.Time
		reply      apitest.Reply
		err        error
		postExpiry bool // purchase: sent after expires by this host's clock
	}
	// One log per worker: no locking while the storm runs.
	logs := make([][]answer, workers)
	deadline := time.Now().Add(storm)
	testutil.Together(workers, workers, func(w int) {
		for time.Now().Before(deadline) {
			c := answer{user: fmt.Sprintf("user-%02d", rand.IntN(users)), item: rand.IntN(items) + 1, sent: time.Now()}
			c.reply, c.err = apitest.Send(client, http.MethodPost, apitest.CheckoutURL(srv.URL, c.user, c.item), "", nil)
			logs[w] = append(logs[w], c)
			if c.err != nil || c.reply.Status != http.StatusCreated {
				continue
			}
			p := answer{purchase: true, user: c.user, item: c.item}
			p.code, _ = c.reply.Body["code"].(string)
			if s, _ := c.reply.Body["expires_at"].(string); s != "" {
				p.expires, _ = time.Parse(time.RFC3339Nano, s)
			}
			// An unreadable expires_at fails the checkout's checks below;
			// its purchase just goes out at once.
			if !p.expires.IsZero() && rand.IntN(2) == 0 {
				// Waiting for real time here, not synchronising: the purchase
				// is meant to land within jitter of the expiry instant, where
				// it races both the clock and the checkouts re-claiming the unit.
				p.delayed = true
				offset := time.Duration(rand.Int64N(int64(2*jitter)+1)) - jitter
				timer := time.NewTimer(time.Until(p.expires.Add(offset)))
				<-timer.C
			}
			p.sent = time.Now()
			p.postExpiry = !p.expires.IsZero() && p.sent.After(p.expires)
			p.reply, p.err = apitest.Send(client, http.MethodPost, apitest.PurchaseURL(srv.URL, p.code), "", nil)
			logs[w] = append(logs[w], p)
		}
	})

	// A systematic failure would repeat on thousands of answers: report the
	// first few in full and count the rest.
	const shown = 20
	bad, serverErrors := 0, 0
	var firstServerError string
	complain := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= shown {
			t.Errorf(format, args...)
		}
	}
	// verify is apitest.Check within the budget, a quiet count beyond it.
	verify := func(what string, r apitest.Reply, status int, code string) bool {
		t.Helper()
		if bad < shown {
			if !apitest.Check(t, what, r, status, code) {
				bad++
				return false
			}
			return true
		}
		if r.Status != status || r.Body == nil || (code != "" && apitest.ErrorCode(r.Body) != code) {
			bad++
			return false
		}
		return true
	}

	var (
		checkouts, holds int64
		refused          = map[string]int{}
		boughtIDs        []int64
		boughtCodes      []string
		seenIDs          = map[int64]bool{}
		expiredCodes     []string
		// outcome counts of purchases: at once, or around expiry before or after it
		now, before, after struct{ ok, expired int }
	)
	for w, answers := range logs {
		for i, a := range answers {
			what := fmt.Sprintf("worker %d request %d: checkout of item %d by %s", w, i, a.item, a.user)
			if a.purchase {
				what = fmt.Sprintf("worker %d request %d: purchase by %s of item %d (delayed %v, sent %v from expiry)",
					w, i, a.user, a.item, a.delayed, a.sent.Sub(a.expires))
			}
			if a.err != nil {
				complain("%s: transport error: %v", what, a.err)
				continue
			}
			if a.reply.Status >= 500 {
				if serverErrors++; serverErrors == 1 {
					firstServerError = fmt.Sprintf("%s: %d %s", what, a.reply.Status, a.reply.Raw)
				}
			}
			r := a.reply
			code := apitest.ErrorCode(r.Body)
			if !a.purchase {
				checkouts++
				switch {
				case r.Status == http.StatusCreated:
					holds++
					if verify(what, r, http.StatusCreated, "") {
						if c, _ := r.Body["code"].(string); c == "" {
							complain("%s: 201 without a code: %s", what, r.Raw)
						}
						if got := apitest.Int(t, r.Body, "sale_id"); got != saleID {
							complain("%s: hold in sale %d, want %d", what, got, saleID)
						}
						apitest.Time(t, r.Body, "expires_at")
					}
				case r.Status == http.StatusConflict && refusals[code]:
					refused[code]++
					verify(what, r, http.StatusConflict, code)
				default:
					complain("%s: %d %s, want 201 or 409 with one of %v", what, r.Status, r.Raw, refusals)
				}
				continue
			}

			tally := &now
			switch {
			case a.delayed && a.postExpiry:
				tally = &after
			case a.delayed:
				tally = &before
			}
			switch r.Status {
			case http.StatusOK:
				tally.ok++
				if !verify(what, r, http.StatusOK, "") {
					continue
				}
				id := apitest.Int(t, r.Body, "purchase_id")
				if seenIDs[id] {
					complain("%s: purchase_id %d answered for two codes", what, id)
				}
				seenIDs[id] = true
				boughtIDs, boughtCodes = append(boughtIDs, id), append(boughtCodes, a.code)
				if r.Body["user_id"] != a.user {
					complain("%s: answered user_id %v", what, r.Body["user_id"])
				}
				// The same assumption as waitPastExpiry: PostgreSQL's clock,
				// which decides expiry, is this host's.
				if a.postExpiry {
					complain("%s: sold although sent after its hold expired at %v: %s", what, a.expires, r.Raw)
				}
			case http.StatusGone:
				tally.expired++
				verify(what, r, http.StatusGone, "code_expired")
				expiredCodes = append(expiredCodes, a.code)
			default:
				complain("%s: %d %s, want 200 or 410 code_expired", what, r.Status, r.Raw)
			}
		}
	}
	if bad > shown {
		t.Errorf("... and %d more bad answers not shown", bad-shown)
	}
	if serverErrors > 0 {
		t.Errorf("%d answers were 5xx (a deadlock or a failed batch); the first: %s", serverErrors, firstServerError)
	}
	t.Logf("%d checkouts: %d held, refused %v; purchases at once: %d bought, %d expired; "+
		"around expiry, sent before it: %d bought, %d expired; sent after it: %d bought, %d expired",
		checkouts, holds, refused, now.ok, now.expired, before.ok, before.expired, after.ok, after.expired)

	sold := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM purchases WHERE sale_id = $1", saleID)
	if sold > units {
		t.Errorf("%d purchase rows, want at most %d", sold, units)
	}
	if sold != int64(len(boughtIDs)) {
		t.Errorf("%d purchase rows, but %d purchases were answered 200", sold, len(boughtIDs))
	}
	checks := []struct {
		what string
		sql  string
		args []any
		want int64
	}{
		{"units sold twice", "SELECT count(*) - count(DISTINCT unit_id) FROM purchases WHERE sale_id = $1", nil, 0},
		{"codes sold twice", "SELECT count(*) - count(DISTINCT code) FROM purchases WHERE sale_id = $1", nil, 0},
		{"users above the cap", `SELECT count(*) FROM (SELECT user_id FROM purchases WHERE sale_id = $1
			GROUP BY user_id HAVING count(*) > $2) over_cap`, []any{limit}, 0},
		{"purchases whose unit is not sold under their code", `SELECT count(*) FROM purchases p
			LEFT JOIN units u ON u.id = p.unit_id
			WHERE p.sale_id = $1 AND (u.id IS NULL OR u.sold_at IS NULL OR u.hold_code IS DISTINCT FROM p.code
				OR u.held_by IS DISTINCT FROM p.user_id OR u.sale_id <> p.sale_id OR u.item_id <> p.item_id)`, nil, 0},
		// purchased_at is the purchase's now(), which precedes the
		// clock_timestamp() that had to be before the hold's end.
		{"purchases not of a live hold under their code", `SELECT count(*) FROM purchases p
			LEFT JOIN checkout_attempts a ON a.code = p.code
			WHERE p.sale_id = $1 AND (a.id IS NULL OR a.outcome <> 'held' OR a.unit_id <> p.unit_id
				OR a.user_id <> p.user_id OR p.purchased_at >= a.expires_at)`, nil, 0},
		{"units sold minus purchase rows", `SELECT (SELECT count(*) FROM units WHERE sale_id = $1 AND sold_at IS NOT NULL)
			- (SELECT count(*) FROM purchases WHERE sale_id = $1)`, nil, 0},
		{"units sold outside the sale", "SELECT count(*) FROM units WHERE sale_id <> $1 AND sold_at IS NOT NULL", nil, 0},
		{"checkout attempts", "SELECT count(*) FROM checkout_attempts WHERE sale_id = $1", nil, checkouts},
		{"attempts outside the sale", "SELECT count(*) FROM checkout_attempts WHERE sale_id IS DISTINCT FROM $1", nil, 0},
		{"holds", "SELECT count(*) FROM checkout_attempts WHERE sale_id = $1 AND outcome = 'held'", nil, holds},
		{"200 answers matching a purchase row by id and code", `SELECT count(*) FROM purchases
			WHERE sale_id = $1 AND (id, code) IN (SELECT * FROM unnest($2::bigint[], $3::text[]))`,
			[]any{boughtIDs, boughtCodes}, int64(len(boughtIDs))},
		{"410 answers whose code was sold", "SELECT count(*) FROM purchases WHERE sale_id = $1 AND code = ANY($2)",
			[]any{expiredCodes}, 0},
	}
	for _, c := range checks {
		if got := pgtest.Scalar(t, srv.Pool, c.sql, append([]any{saleID}, c.args...)...); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}

	// The point of the test is the race with expiry: make sure it ran.
	reclaimed := pgtest.Scalar(t, srv.Pool, `SELECT count(*) FROM (SELECT unit_id FROM checkout_attempts
		WHERE sale_id = $1 AND outcome = 'held' GROUP BY unit_id HAVING count(*) > 1) twice`, saleID)
	t.Logf("%d units sold, %d units held more than once", sold, reclaimed)
	if len(expiredCodes) == 0 {
		t.Errorf("no purchase was answered 410 code_expired, so no hold expired under a purchase")
	}
	if reclaimed == 0 {
		t.Errorf("no unit was held twice, so no expired hold was re-claimed")
	}
}
