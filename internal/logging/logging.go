// Package logging builds the server's structured logger.
package logging

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// flushEvery bounds how long a log line may wait in the buffer: at most
// this much is lost if the process dies without Close.
const flushEvery = 100 * time.Millisecond

// Writer buffers log lines and writes them out at least every flushEvery.
// One write system call per request line costs a flash-sale server several
// percent of its CPU; a buffer turns hundreds of lines into one write.
type Writer struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewWriter starts buffering writes to w.
func NewWriter(w io.Writer) *Writer {
	bw := &Writer{buf: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go bw.flushLoop()
	return bw
}

func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *Writer) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.buf.Flush() // nowhere to report a failing log destination
}

func (w *Writer) flushLoop() {
	defer close(w.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.flush()
		case <-w.stop:
			w.flush()
			return
		}
	}
}

// Close writes out what is buffered and stops the flusher.
func (w *Writer) Close() {
	close(w.stop)
	<-w.done
}

// New returns a JSON logger on w at level.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Open returns the process's logger: JSON on stderr through a Writer, at
// the level named (LOG_LEVEL: debug, info, warn or error). Call close
// before exiting, to write out what is buffered.
func Open(level string) (log *slog.Logger, close func(), err error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	out := NewWriter(os.Stderr)
	return New(out, l), out.Close, nil
}
