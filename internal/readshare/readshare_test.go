package readshare

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// Keys come from clients (item page bounds): the answers kept stay bounded
// however many distinct ones are asked for.
func TestAnswersStayBounded(t *testing.T) {
	r := New(time.Hour)
	for i := range 3 * maxAnswers {
		v, err := Do(r, context.Background(), strconv.Itoa(i), func(context.Context) (int, error) { return i, nil })
		if err != nil || v != i {
			t.Fatalf("read %d: got %d, %v", i, v, err)
		}
		if n := len(r.done); n > maxAnswers {
			t.Fatalf("after %d keys: %d answers kept, want at most %d", i+1, n, maxAnswers)
		}
	}
	if New(0) != nil {
		t.Error("maxAge 0 must turn sharing off")
	}
}
