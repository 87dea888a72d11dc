package config

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
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

// minMemoryLimit is the smallest GOMEMLIMIT taken: below it the collector
// runs all the time, and a value this small is almost always a number
// whose unit was left out (GOMEMLIMIT=100 is 100 bytes).
const minMemoryLimit = 16 << 20

// checkGC refuses what the Go runtime would take silently and run badly
// with. The runtime reads both before main: it takes a GOGC it cannot read
// as 100 without a word, and stops the process itself on a GOMEMLIMIT it
// cannot read ("fatal error: malformed GOMEMLIMIT", exit 2), before this
// code can say anything.
func checkGC(gogc, memLimit string) error {
	if gogc != "" && gogc != "off" {
		if n, err := strconv.ParseInt(gogc, 10, 32); err != nil || n < 1 {
			return fmt.Errorf("GOGC=%s is not a percentage: want a whole number from 1, such as 100 or 400 "+
				"(how much the heap grows between collections), or off", gogc)
		}
	}
	if memLimit != "" && memLimit != "off" {
		n, ok := parseByteCount(memLimit)
		switch {
		case !ok:
			return fmt.Errorf("GOMEMLIMIT=%s is not a size: want a number with a unit, such as 100MiB or 1GiB "+
				"(units B, KiB, MiB, GiB, TiB), or off", memLimit)
		case n < minMemoryLimit:
			return fmt.Errorf("GOMEMLIMIT=%s is %d bytes, below the 16MiB the server needs: "+
				"give a unit, such as 100MiB or 1GiB (units B, KiB, MiB, GiB, TiB)", memLimit, n)
		}
	}
	return nil
}

// parseByteCount reads a size as the runtime does for GOMEMLIMIT: a
// non-negative whole number, then B or a binary unit, or no unit (bytes).
func parseByteCount(s string) (int64, bool) {
	units := []struct {
		suffix string
		shift  uint
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"B", 0}}
	shift := uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > (1<<63-1)>>shift {
		return 0, false
	}
	return n << shift, true
}
