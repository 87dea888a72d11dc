package config

import (
	"os"
	"runtime/debug"
)

// Garbage collection defaults, each unless the operator sets its variable.
// Go's default (GOGC=100) collects whenever the heap doubles: with the
// small live heap of this server (10 to 20 MiB under a storm) that is
// several collections a second, about a sixth of its CPU. GOGC=400 lets
// the heap grow to five times the live data, and the soft limit keeps the
// whole heap near 100 MiB whatever GOGC allows.
const (
	defaultGOGC        = 400
	defaultMemoryLimit = 100 << 20
)

// TuneGC applies them; call it first thing in main.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
