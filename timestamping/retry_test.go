package timestamping_test

import (
	"testing"
	"time"

	"github.com/tenantry/tenantry/timestamping"
)

// Ensure retries wait twice as long each time, up to an hour, give or take
// a quarter: no bulk request's retries arrive together.
func TestNextRetry(t *testing.T) {
	t.Parallel()
	s := timestamping.NewService(nil, nil, nil, nil, nil, nil, timestamping.Config{RetryDelay: 30 * time.Second})
	for _, tc := range []struct {
		attempt int
		base    time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {8, time.Hour}, {20, time.Hour}} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := s.NextRetry(tc.attempt)
			if d < tc.base*3/4 || d > tc.base*5/4 {
				t.Fatalf("attempt %d: waits %s, want %s ± 25%%", tc.attempt, d, tc.base)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: only %d distinct waits in 50: no jitter", tc.attempt, len(seen))
		}
	}
}
