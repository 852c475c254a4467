// Package testclock is the clock of tests that make tokens, launches and
// records expire without waiting: give [Clock.Now] to core.Config.Now and
// smarttest.Options.Now, and move it with [Clock.Advance].
package testclock

import (
	"sync"
	"time"
)

// Clock is a time that stands still until Advance moves it. Make one with
// [New]; it is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock that reads the time it was made.
func New() *Clock { return &Clock{now: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
