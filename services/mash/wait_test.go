package main_test

import (
	"testing"
	"time"
)

// pollEvery is the pause between two looks at a running system: long enough not to spin a
// busy machine, short enough not to slow a test.
const pollEvery = 50 * time.Millisecond

// poll calls cond until it reports true or timeout has passed, and reports whether it did.
// Tests wait through it for something to happen (an event consumed, a delivery made, a
// process ready); a test that waits for nothing to happen waits for a consumer to drain
// instead (eventstest.Drained).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}

// waitUntil polls cond for up to 30 seconds and fails the test naming what never happened.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !poll(30*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}
