package store

import (
	"math"
	"strings"
	"testing"
)

// The ranges of a split select every seq exactly once, in order, whatever the log's real
// size: each seq value falls in exactly one range, and the ranges follow one another.
func TestSplitEntriesCoversEverySeqOnce(t *testing.T) {
	in := func(r SeqRange, seq int64) bool {
		return (r.First || seq >= r.From) && (r.Last || seq < r.To)
	}
	for _, tc := range []struct{ n, size int64 }{{0, 8}, {1, 8}, {8, 8}, {9, 8}, {16, 8}, {17, 8}, {100, 7}, {5, 0}} {
		ranges := SplitEntries(tc.n, tc.size)
		if !ranges[0].First || !ranges[len(ranges)-1].Last {
			t.Fatalf("n %d, size %d: %+v does not start with the first range and end with the last", tc.n, tc.size, ranges)
		}
		for _, seq := range []int64{math.MinInt64, -1, 0, 1, tc.size - 1, tc.size, tc.n - 1, tc.n, tc.n + 1, 3 * tc.n, math.MaxInt64} {
			hits := 0
			for _, r := range ranges {
				if in(r, seq) {
					hits++
				}
			}
			if hits != 1 {
				t.Errorf("n %d, size %d: seq %d is in %d ranges of %+v", tc.n, tc.size, seq, hits, ranges)
			}
		}
		for i := 1; i < len(ranges); i++ {
			if ranges[i].From != ranges[i-1].To || ranges[i].First || ranges[i-1].Last {
				t.Errorf("n %d, size %d: range %d (%+v) does not follow %+v", tc.n, tc.size, i, ranges[i], ranges[i-1])
			}
		}
	}
}

// Only the last range reads the rows without a seq, after its own, as ORDER BY seq would.
func TestSeqRangeReadsRowsWithoutSeqLast(t *testing.T) {
	ranges := SplitEntries(30, 10)
	for i, r := range ranges {
		cond, args, nulls := r.where()
		if nulls != (i == len(ranges)-1) {
			t.Errorf("range %d (%+v): reads the rows without a seq: %v", i, r, nulls)
		}
		if strings.Count(cond, "$") != len(args) {
			t.Errorf("range %d: condition %q for %d arguments", i, cond, len(args))
		}
	}
	if cond, _, nulls := AllEntries.where(); cond != "" || nulls {
		t.Errorf("every entry: condition %q, separate read of rows without a seq %v; want one ordered read", cond, nulls)
	}
}
