package demo

import (
	"sync/atomic"
	"time"
)

// Clock is simulated time shared by every service of a demo run. It only moves forward:
// services stamp events, deadlines and audit entries with it, and an earlier stamp after a
// later one would look like corruption to anyone reading the history.
type Clock struct {
	ns atomic.Int64
}

// NewClock returns a clock showing start.
func NewClock(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now is the simulated time, in UTC. It is safe for concurrent use and is the Now of every
// service's dependencies during a demo.
func (c *Clock) Now() time.Time {
	return time.Unix(0, c.ns.Load()).UTC()
}

// AdvanceTo moves the clock to t unless it already shows a later time, and returns what it
// shows afterwards.
func (c *Clock) AdvanceTo(t time.Time) time.Time {
	want := t.UnixNano()
	for {
		cur := c.ns.Load()
		if want <= cur {
			return time.Unix(0, cur).UTC()
		}
		if c.ns.CompareAndSwap(cur, want) {
			return t.UTC()
		}
	}
}
