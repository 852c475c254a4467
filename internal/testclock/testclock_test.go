package testclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/fhirware/smart/internal/testclock"
)

// The clock stands still between reads, and moves by what every Advance
// adds, also when they come at once.
func TestAdvance(t *testing.T) {
	t.Parallel()
	c := testclock.New()
	start := c.Now()
	if again := c.Now(); !again.Equal(start) {
		t.Fatalf("the clock moved on its own: %v, then %v", start, again)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			c.Advance(time.Minute)
			_ = c.Now()
		})
	}
	wg.Wait()
	if got := c.Now().Sub(start); got != 10*time.Minute {
		t.Fatalf("after ten Advances of a minute the clock moved %v", got)
	}
}
