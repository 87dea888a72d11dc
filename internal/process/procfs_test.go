package process

import (
	"os"
	"testing"
	"time"
)

func TestProcParsers(t *testing.T) {
	t.Parallel()
	stat := []byte("1234 (my (odd) proc) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1 0")
	if d, err := parseStatCPU(stat); err != nil || d != 4*time.Second {
		t.Errorf("parseStatCPU: %v %v", d, err)
	}
	if b, err := parseStatusKB([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t 1 kB\n"), "VmHWM:"); err != nil || b != 2<<20 {
		t.Errorf("parseStatusKB: %d %v", b, err)
	}
	if MachineBusy() <= 0 {
		t.Error("MachineBusy: no busy time read from /proc/stat")
	}
	if _, err := CPU(os.Getpid()); err != nil {
		t.Errorf("CPU of this process: %v", err)
	}
	if rss, err := PeakRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("PeakRSS of this process: %d %v", rss, err)
	}
}
