package testutil

import (
	"sync"
	"sync/atomic"
)

// Together runs f(i) for i in [0, n) on the given number of goroutines, all
// released at once, and returns when every call has returned: the shape of
// every race test here.
func Together(workers, n int, f func(i int)) {
	var next atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			<-start
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	close(start)
	wg.Wait()
}
