package deploy

import (
	"testing"
	"time"
)

func TestSafeSaleDuration(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 13, 55, 0, 0, time.UTC)
	if d := SafeSaleDuration(now, 10*time.Minute); d != 3*time.Hour { // 1h and 2h end at 14:00
		t.Errorf("SafeSaleDuration: %v", d)
	}
	if d := SafeSaleDuration(now.Add(-30*time.Minute), 10*time.Minute); d != time.Hour {
		t.Errorf("SafeSaleDuration: %v", d)
	}
}
