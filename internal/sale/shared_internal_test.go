package sale

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// Keys come from clients (item page bounds): the answers kept stay bounded
// however many distinct ones are asked for.
func TestSharedReadsStayBounded(t *testing.T) {
	r := newSharedReads(time.Hour)
	for i := range 3 * maxSharedReads {
		v, err := sharedDo(r, context.Background(), strconv.Itoa(i), func(context.Context) (int, error) { return i, nil })
		if err != nil || v != i {
			t.Fatalf("read %d: got %d, %v", i, v, err)
		}
		if n := len(r.done); n > maxSharedReads {
			t.Fatalf("after %d keys: %d answers kept, want at most %d", i+1, n, maxSharedReads)
		}
	}
	if newSharedReads(0) != nil {
		t.Error("maxAge 0 must turn sharing off")
	}
}
