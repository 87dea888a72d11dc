package stats

import (
	"strconv"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/driver"
)

// Key counts answers by status and outcome.
type Key struct {
	Status  int
	Outcome string
}

// Label is how reports name the key: "409 sold_out", or the outcome
// alone when there was no HTTP status.
func (k Key) Label() string {
	if k.Status == 0 {
		return k.Outcome
	}
	return strconv.Itoa(k.Status) + " " + k.Outcome
}

// maxErrorSamples bounds the error messages kept per endpoint.
const maxErrorSamples = 5

// Endpoint is the answers of one endpoint, by one client or merged.
type Endpoint struct {
	Hist     Histogram
	Outcomes map[Key]int64
	Errors   int64    // answers that never came (Result.Err)
	Samples  []string // a few of their messages
}

// NewEndpoint returns an empty record.
func NewEndpoint() *Endpoint {
	return &Endpoint{Outcomes: make(map[Key]int64, 8)}
}

// Record adds one answer that took d.
func (s *Endpoint) Record(d time.Duration, r driver.Result) {
	s.Hist.Record(d)
	if r.Err != nil {
		s.Errors++
		if len(s.Samples) < maxErrorSamples {
			s.Samples = append(s.Samples, r.Err.Error())
		}
		return
	}
	s.Outcomes[Key{r.Status, r.Outcome}]++
}

// Merge adds o's answers to s.
func (s *Endpoint) Merge(o *Endpoint) {
	s.Hist.Merge(&o.Hist)
	for k, v := range o.Outcomes {
		s.Outcomes[k] += v
	}
	s.Errors += o.Errors
	for _, m := range o.Samples {
		if len(s.Samples) < maxErrorSamples {
			s.Samples = append(s.Samples, m)
		}
	}
}

// Stored counts the checkouts whose attempt the database recorded.
func (s *Endpoint) Stored() int64 {
	var n int64
	for k, v := range s.Outcomes {
		if driver.Stored(k.Outcome) {
			n += v
		}
	}
	return n
}

// ServerErrors counts the 5xx answers.
func (s *Endpoint) ServerErrors() int64 {
	var n int64
	for k, v := range s.Outcomes {
		if k.Status >= 500 {
			n += v
		}
	}
	return n
}
