package usage

import (
	"fmt"

	"github.com/flashsale/flashsale/internal/process"
)

// Server is the service's processes' resources.
type Server struct {
	PIDs []int `json:"pids"`
	// PeakRSSBytes is the largest of the processes' peaks.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// CPUTotalS is the processes' CPU since they started, together.
	CPUTotalS float64 `json:"cpu_total_s"`
}

// ServerOf reads the resources pids have used since they started.
func ServerOf(pids []int) (*Server, error) {
	u := &Server{PIDs: pids}
	for _, pid := range pids {
		rss, err := process.PeakRSS(pid)
		if err != nil {
			return nil, fmt.Errorf("peak RSS of pid %d: %w", pid, err)
		}
		u.PeakRSSBytes = max(u.PeakRSSBytes, rss)
	}
	cpu, err := process.CPUs(pids)
	if err != nil {
		return nil, fmt.Errorf("CPU of pids %v: %w", pids, err)
	}
	u.CPUTotalS = cpu.Seconds()
	return u, nil
}
