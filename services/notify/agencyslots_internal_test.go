package notify

import (
	"slices"
	"testing"
	"time"

	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// A claim keeps, most urgent first, what each agency has room for, and gives back the rest;
// an agency the process has not met has room for two rounds of the directory's default.
func TestTrimKeepsTheMostUrgentEachAgencyHasRoomFor(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	n := func(id, agency string, priority int, due time.Duration) store.Notification {
		return store.Notification{ID: id, Partnership: "p", Agency: agency, Priority: priority, NextAttemptAt: at.Add(due)}
	}
	var claimed []store.Notification
	// Returned by Postgres in no particular order.
	for i := range 12 {
		claimed = append(claimed, n("new-"+string(rune('a'+i)), "new-agency", 2, time.Duration(12-i)*time.Second))
	}
	claimed = append(claimed,
		n("slow-green", "slow", 2, 0), n("slow-red-late", "slow", 0, time.Minute), n("slow-red", "slow", 0, 0),
		n("busy-1", "busy", 1, 0))
	room := map[agencyKey]int{{"p", "slow"}: 2, {"p", "busy"}: 0}

	keep, giveBack := trim(claimed, room)
	ids := func(ns []store.Notification) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.ID)
		}
		return out
	}
	wantKeep := []string{"slow-red", "slow-red-late", "new-l", "new-k", "new-j", "new-i", "new-h", "new-g", "new-f", "new-e"}
	if got := ids(keep); !slices.Equal(got, wantKeep) {
		t.Errorf("kept %v, want %v", got, wantKeep)
	}
	if defaultAllowance != 2*directory.DefaultConcurrency {
		t.Fatalf("defaultAllowance %d: the kept list assumes 8", defaultAllowance)
	}
	wantBack := []string{"busy-1", "new-d", "new-c", "new-b", "new-a", "slow-green"}
	got := ids(giveBack)
	slices.Sort(got)
	slices.Sort(wantBack)
	if !slices.Equal(got, wantBack) {
		t.Errorf("gave back %v, want %v", got, wantBack)
	}
}

// An agency's room follows how fast it answers: two rounds of its slots until it is heard
// from or while it is slow, more as its attempts come back quickly, and a timeout brings it
// back down at once.
func TestRoomFollowsHowFastTheAgencyAnswers(t *testing.T) {
	a := agencySlots{waitBudget: 13 * time.Second}
	n := store.Notification{Partnership: "p", Agency: "police"}
	a.learn("p", []directory.Agency{{ID: "police", Concurrency: 4}})
	room := func() int { free, _, _ := a.allowances(); return free[keyOf(n)] }
	if got := room(); got != 8 {
		t.Errorf("before any attempt: room %d, want 8", got)
	}
	a.observe(n, 20*time.Millisecond)
	if got := room(); got != maxRounds*4 {
		t.Errorf("answering in 20ms: room %d, want %d", got, maxRounds*4)
	}
	a.observe(n, 10*time.Second)
	if got := room(); got != 8 {
		t.Errorf("after a 10s attempt: room %d, want 8", got)
	}
	a.observe(n, 20*time.Millisecond)
	if got := room(); got != 8 {
		t.Errorf("one quick answer after a timeout: room %d, want still 8", got)
	}
	a.claimed([]store.Notification{n, n, n}, nil, map[agencyKey]int{keyOf(n): 8})
	if got := room(); got != 5 {
		t.Errorf("three claimed: room %d, want 5", got)
	}
	if a.sent(n) {
		t.Error("an attempt ended for an agency with room left woke the worker")
	}
	a.claimed([]store.Notification{n, n, n, n, n, n}, nil, map[agencyKey]int{keyOf(n): 6})
	_, skipP, skipA := a.allowances()
	if !slices.Equal(skipP, []string{"p"}) || !slices.Equal(skipA, []string{"police"}) {
		t.Errorf("full agency skipped as %v/%v, want p/police", skipP, skipA)
	}
	if !a.sent(n) {
		t.Error("an attempt ended for a full agency and did not wake the worker")
	}
}
