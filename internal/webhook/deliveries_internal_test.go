package webhook

import (
	"slices"
	"testing"
	"time"
)

// A turn's or a redelivery's events go to each endpoint in jobs of up to
// 100, in order, each in the delivery queue with the retries of RetryFor.
func TestDeliveriesAreJobsOfAHundredEventsPerEndpoint(t *testing.T) {
	urls := []string{"http://a.example/hooks", "http://b.example/hooks"}
	e := &Events{cfg: Config{URLs: urls, RetryFor: time.Hour}}
	for _, n := range []int{0, 1, 99, 100, 101, 250} {
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = int64(1000 + i)
		}
		params := e.deliveries(ids)
		if want := (n + 99) / 100 * len(urls); len(params) != want {
			t.Errorf("%d events: %d jobs, want %d", n, len(params), want)
		}
		sent := map[string][]int64{}
		for _, p := range params {
			args, ok := p.Args.(deliverArgs)
			if !ok {
				t.Fatalf("%d events: a job of %T", n, p.Args)
			}
			if len(args.EventIDs) == 0 || len(args.EventIDs) > 100 {
				t.Errorf("%d events: a job of %d", n, len(args.EventIDs))
			}
			if p.InsertOpts == nil || p.InsertOpts.Queue != queue || p.InsertOpts.MaxAttempts != maxAttempts(time.Hour) {
				t.Errorf("%d events: insert options %+v, want queue %s and %d attempts", n, p.InsertOpts, queue, maxAttempts(time.Hour))
			}
			sent[args.URL] = append(sent[args.URL], args.EventIDs...)
		}
		for _, u := range urls {
			if n > 0 && !slices.Equal(sent[u], ids) {
				t.Errorf("%d events: %s is sent %v, want each once, in order", n, u, sent[u])
			}
		}
	}
	if params := (&Events{cfg: Config{RetryFor: time.Hour}}).deliveries([]int64{1, 2}); len(params) != 0 {
		t.Errorf("no endpoints: %d jobs, want none", len(params))
	}
}
