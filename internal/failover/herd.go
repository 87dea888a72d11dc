package failover

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// Herd is shoppers checking out and buying as fast as they are answered.
// Every answer is logged: what was acknowledged (a hold, a purchase, a
// refusal) must still be true after a failover, and the log's times give
// the outage as shoppers saw it.
type Herd struct {
	Base    string // the server's base URL
	Clients int
	Users   int // user ids u0..u(Users-1)
	// HotUsers, when set, send half the requests (u0..u(HotUsers-1)), so
	// that they reach the cap and are refused.
	HotUsers int
	Items    int // item ids 1..Items

	mu sync.Mutex
	// Holds maps each acknowledged hold's code to its user and item.
	Holds map[string]Hold
	// Purchases maps each acknowledged purchase's code to its purchase id.
	Purchases map[string]Bought
	// Refusals counts acknowledged refusals (409, 404, 410) by user, item
	// and outcome: each is a stored checkout attempt.
	Refusals map[Refusal]int
	// Answers is every answer, in the order they were read.
	Answers []Answer
	// Unexpected lists answers no shopper should get (500s, broken
	// connections, unknown codes).
	Unexpected []string
}

// Hold is an acknowledged hold.
type Hold struct {
	User string
	Item int
}

// Bought is an acknowledged purchase.
type Bought struct {
	ID   int64
	User string
	Item int
}

// Refusal keys an acknowledged refusal.
type Refusal struct {
	User    string
	Item    int
	Outcome string
}

// Answer is one reply's status and when it was read.
type Answer struct {
	At     time.Time
	Status int
	Path   string // "checkout" or "purchase"
}

// Run sends requests from h.Clients shoppers until ctx is done.
func (h *Herd) Run(ctx context.Context) {
	h.mu.Lock()
	if h.Holds == nil {
		h.Holds, h.Purchases, h.Refusals = map[string]Hold{}, map[string]Bought{}, map[Refusal]int{}
	}
	h.mu.Unlock()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: h.Clients}}
	var wg sync.WaitGroup
	for c := range h.Clients {
		wg.Go(func() { h.shop(ctx, client, rand.New(rand.NewPCG(uint64(c), 15))) })
	}
	wg.Wait()
}

func (h *Herd) shop(ctx context.Context, client *http.Client, rng *rand.Rand) {
	for ctx.Err() == nil {
		users := h.Users
		if h.HotUsers > 0 && rng.IntN(2) == 0 {
			users = h.HotUsers
		}
		user, item := fmt.Sprintf("u%d", rng.IntN(users)), 1+rng.IntN(h.Items)
		r, ok := h.send(client, "checkout", apitest.CheckoutURL(h.Base, user, item))
		if !ok {
			continue
		}
		switch r.Status {
		case http.StatusCreated:
			code, _ := r.Body["code"].(string)
			h.record(func() { h.Holds[code] = Hold{user, item} })
			h.buy(ctx, client, code, user, item)
		case http.StatusConflict, http.StatusNotFound, http.StatusGone:
			outcome := apitest.ErrorCode(r.Body)
			h.record(func() { h.Refusals[Refusal{user, item, outcome}]++ })
		case http.StatusServiceUnavailable:
			h.pause(ctx)
		default:
			h.unexpected("checkout answered %d: %s", r.Status, r.Raw)
		}
	}
}

// buy purchases a hold, asking again while the answer is 503: a purchase
// may be repeated freely, and a repeat after "may have been stored" is
// answered from what the first one left.
func (h *Herd) buy(ctx context.Context, client *http.Client, code, user string, item int) {
	for ctx.Err() == nil {
		r, ok := h.send(client, "purchase", apitest.PurchaseURL(h.Base, code))
		if !ok {
			continue
		}
		switch r.Status {
		case http.StatusOK:
			id, _ := r.Body["purchase_id"].(float64)
			h.record(func() { h.Purchases[code] = Bought{int64(id), user, item} })
			return
		case http.StatusServiceUnavailable:
			h.pause(ctx)
		default:
			h.unexpected("purchase of an acknowledged hold answered %d: %s", r.Status, r.Raw)
			return
		}
	}
}

// pause paces a shopper who was told to come back (Retry-After), much
// shorter than a real one would wait, so the outage's end shows sharply.
func (h *Herd) pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Millisecond):
	}
}

func (h *Herd) send(client *http.Client, path, url string) (apitest.Reply, bool) {
	r, err := apitest.Send(client, http.MethodPost, url, "", nil)
	if err != nil {
		h.unexpected("%v", err)
		return r, false
	}
	h.record(func() { h.Answers = append(h.Answers, Answer{At: time.Now(), Status: r.Status, Path: path}) })
	return r, true
}

func (h *Herd) record(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

func (h *Herd) unexpected(format string, args ...any) {
	h.record(func() { h.Unexpected = append(h.Unexpected, fmt.Sprintf(format, args...)) })
}

// Outage is the failover as the herd saw it, in times from the loss of the
// primary (at).
type Outage struct {
	// First503 and Last503 bound the answers 503; Window is between them.
	First503, Last503, Window time.Duration
	// FirstCreated is the first 201 after the last 503 (after at when there
	// was none); Recovered says there was one.
	FirstCreated time.Duration
	Recovered    bool
	Answers503   int
}

// Outage reads the log from at.
func (h *Herd) Outage(at time.Time) Outage {
	h.mu.Lock()
	defer h.mu.Unlock()
	var o Outage
	var last time.Time
	for _, a := range h.Answers {
		if a.Status == http.StatusServiceUnavailable && !a.At.Before(at) {
			if o.Answers503 == 0 {
				o.First503 = a.At.Sub(at)
			}
			o.Answers503++
			last = a.At
		}
	}
	if o.Answers503 > 0 {
		o.Last503 = last.Sub(at)
		o.Window = o.Last503 - o.First503
	} else {
		last = at
	}
	for _, a := range h.Answers {
		if a.Status == http.StatusCreated && a.At.After(last) {
			o.FirstCreated, o.Recovered = a.At.Sub(at), true
			break
		}
	}
	return o
}

func (o Outage) String() string {
	if !o.Recovered {
		return fmt.Sprintf("%d answers 503 from +%.2fs to +%.2fs; no 201 since", o.Answers503, o.First503.Seconds(), o.Last503.Seconds())
	}
	return fmt.Sprintf("%d answers 503 from +%.2fs to +%.2fs (window %.2fs); first 201 at +%.2fs",
		o.Answers503, o.First503.Seconds(), o.Last503.Seconds(), o.Window.Seconds(), o.FirstCreated.Seconds())
}

// Count is how many answers had status since from.
func (h *Herd) Count(status int, from time.Time) (n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.Answers {
		if a.Status == status && !a.At.Before(from) {
			n++
		}
	}
	return n
}

// BackToFull is when, after the loss of the primary at at and the last
// 503, the herd was answered at 90 % of its rate in the second before the
// loss again, over a 500 ms window; ok is false when it never was.
func (h *Herd) BackToFull(at time.Time) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const window = 500 * time.Millisecond
	last := at // the last 503
	for _, a := range h.Answers {
		if a.Status == http.StatusServiceUnavailable && a.At.After(last) {
			last = a.At
		}
	}
	var before int
	var served []time.Time
	for _, a := range h.Answers {
		if a.Status == http.StatusServiceUnavailable {
			continue
		}
		if a.At.Before(at) && !a.At.Before(at.Add(-2*window)) {
			before++
		}
		if a.At.After(last) {
			served = append(served, a.At)
		}
	}
	want := int(0.9 * float64(before) / 2)
	for i, t := range served {
		j := i
		for j < len(served) && served[j].Before(t.Add(window)) {
			j++
		}
		if j-i >= want && j < len(served) {
			return t.Sub(at), true
		}
	}
	return 0, false
}
