package logging

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
)

// lockedBuffer is the destination; the flusher writes from its own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestCloseWritesEveryLine(t *testing.T) {
	var dst lockedBuffer
	w := NewWriter(&dst)
	log := New(w, 0)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() { log.Info("request", "n", i) })
	}
	wg.Wait()
	w.Close()
	lines := bytes.Split(bytes.TrimSpace(dst.b.Bytes()), []byte("\n"))
	if len(lines) != 100 {
		t.Fatalf("got %d lines, want 100", len(lines))
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal(l, &rec); err != nil || rec["msg"] != "request" {
			t.Fatalf("line %q: %v", l, err)
		}
	}
}
