package sale

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// maxBatch bounds how many requests share one transaction: enough to
// amortise the commit under a storm, small enough that a batch holds its
// locks for a millisecond or two.
const maxBatch = 64

// batcher groups concurrent requests into one transaction whose queries
// take them as arrays (see store/tx.go), so that under load many requests share
// one round trip and one commit (group commit), while every caller still
// waits for the commit of its own request. Nothing is decided here: a batch
// is just a list handed to PostgreSQL. A worker takes whatever has queued
// while the previous batches ran, so at low load a batch is a single
// request and adds no delay.
//
// Two requests with the same key never share a batch: the second waits for
// the next one. One statement does not see its own writes, so the queries
// are written for at most one request per user (checkout) or per code
// (purchase) in a batch.
type batcher[In, Out any] struct {
	queue   chan *pending[In, Out]
	stop    chan struct{}
	stopped sync.Once
	workers sync.WaitGroup
	// run answers a batch in one transaction, bounded by deadline: one Out
	// per In, same order. The service's are checkoutBatch and
	// purchaseBatch (set in NewService).
	run func(deadline time.Time, ins []In) ([]Out, error)
	// key names what may appear once per batch.
	key func(In) string
	// timeout is a request's deadline when its context has none.
	timeout time.Duration
}

type pending[In, Out any] struct {
	in       In
	deadline time.Time
	// state moves once from queued to running (a worker took it) or to
	// abandoned (its caller gave up first), so a request whose caller was
	// already answered 503 is never executed, and a running one is always
	// waited for.
	state atomic.Int32
	done  chan result[Out] // buffered: a worker never blocks on it
}

const (
	queued int32 = iota
	running
	abandoned
)

type result[Out any] struct {
	out Out
	err error
}

// newBatcher starts one worker per database connection it may use.
func newBatcher[In, Out any](workers int, timeout time.Duration, key func(In) string,
	run func(time.Time, []In) ([]Out, error)) *batcher[In, Out] {
	b := &batcher[In, Out]{
		queue: make(chan *pending[In, Out], 4*maxBatch), stop: make(chan struct{}), run: run, key: key, timeout: timeout,
	}
	for range workers {
		b.workers.Go(b.work)
	}
	return b
}

func (b *batcher[In, Out]) work() {
	batch := make([]*pending[In, Out], 0, maxBatch)
	ins := make([]In, 0, maxBatch)
	keys := make(map[string]struct{}, maxBatch)
	// later holds requests whose key is already in the batch, in arrival
	// order; they open the next batch. They stay queued until taken, so one
	// abandoned meanwhile never runs.
	var later, again []*pending[In, Out]
	take := func(p *pending[In, Out]) {
		if p.state.Load() != queued {
			return // abandoned
		}
		k := b.key(p.in)
		if _, dup := keys[k]; dup {
			again = append(again, p)
			return
		}
		if p.state.CompareAndSwap(queued, running) {
			keys[k] = struct{}{}
			batch = append(batch, p)
		}
	}
	for {
		batch = batch[:0]
		clear(keys)
		again = again[:0]
		for _, p := range later {
			if len(batch) < maxBatch {
				take(p)
			} else {
				again = append(again, p)
			}
		}
		if len(later) == 0 {
			select {
			case p := <-b.queue:
				take(p)
			case <-b.stop:
				return
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-b.queue:
				take(p)
			default:
				break fill
			}
		}
		later, again = again, later
		if len(batch) == 0 {
			continue
		}
		// The batch must not outlive any of its callers: past the earliest
		// deadline it is cancelled and rolled back, and they all get 503.
		deadline := batch[0].deadline
		ins = ins[:0]
		for _, p := range batch {
			ins = append(ins, p.in)
			if p.deadline.Before(deadline) {
				deadline = p.deadline
			}
		}
		outs, err := b.run(deadline, ins)
		if err == nil && len(outs) != len(batch) {
			err = fmt.Errorf("batch of %d requests answered %d", len(batch), len(outs))
		}
		for i, p := range batch {
			if err != nil {
				p.done <- result[Out]{err: err}
			} else {
				p.done <- result[Out]{out: outs[i]}
			}
		}
	}
}

// do queues in and waits until its batch has committed. When ctx ends
// first, a request still queued is withdrawn (it will never run); one
// already running is waited for, which its batch's deadline bounds.
func (b *batcher[In, Out]) do(ctx context.Context, in In) (Out, error) {
	p := &pending[In, Out]{in: in, done: make(chan result[Out], 1)}
	if d, ok := ctx.Deadline(); ok {
		p.deadline = d
	} else {
		p.deadline = time.Now().Add(b.timeout)
	}
	var zero Out
	select {
	case b.queue <- p:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case r := <-p.done:
		return r.out, r.err
	case <-ctx.Done():
		if p.state.CompareAndSwap(queued, abandoned) {
			return zero, ctx.Err()
		}
		r := <-p.done
		return r.out, r.err
	}
}

// close stops the workers once the batches in flight are answered.
func (b *batcher[In, Out]) close() {
	b.stopped.Do(func() { close(b.stop) })
	b.workers.Wait()
}
