package testutil

import (
	"testing"
	"time"
)

// Poll calls try until it returns nil and fails the test with try's last
// error once limit has passed. It is for states reached on another party's
// schedule (a scheduler's tick, a pool's redial), which a test cannot
// synchronise with.
func Poll(t testing.TB, limit time.Duration, try func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", limit, err)
		}
		<-tick.C
	}
}
