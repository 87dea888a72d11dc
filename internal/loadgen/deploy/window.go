package deploy

import "time"

// SafeSaleDuration returns the shortest sale window (whole hours, since
// windows are aligned to their duration) whose window containing now has at
// least margin left, so the sale cannot end or roll over during a run.
func SafeSaleDuration(now time.Time, margin time.Duration) time.Duration {
	for h := 1; h <= 48; h++ {
		d := time.Duration(h) * time.Hour
		if now.UTC().Truncate(d).Add(d).Sub(now) >= margin {
			return d
		}
	}
	return 48 * time.Hour
}
