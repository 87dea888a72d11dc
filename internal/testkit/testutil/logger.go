package testutil

import (
	"log/slog"
	"testing"
)

// Logger discards what it is given unless the test runs with -v, where
// records at level and above show up beside the test's own output.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
