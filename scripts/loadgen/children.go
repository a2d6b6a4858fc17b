package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// children hands out child identities: a new synthetic child for most referrals, an earlier
// one for a share of them, as re-referrals arrive in a real hub. NHS numbers are in the 999
// range, which is never issued to a person.
type children struct {
	mu       sync.Mutex
	rng      *rand.Rand
	share    float64
	seen     []*intakev1.Child
	repeated int
	nextNHS  int
}

// newChildren hands out new children from serial first on.
func newChildren(share float64, first int) *children {
	return &children{rng: rand.New(rand.NewPCG(1, uint64(first))), share: share, nextNHS: first}
}

var (
	givenNames  = []string{"Alex", "Cerys", "Dylan", "Ffion", "Gethin", "Harri", "Iwan", "Lowri", "Megan", "Osian", "Seren", "Tomos"}
	familyNames = []string{"Davies", "Evans", "Griffiths", "Howells", "Jenkins", "Lewis", "Morgan", "Powell", "Rees", "Thomas", "Watkins"}
)

func (c *children) fill(child *intakev1.Child) { c.fillWith(child, false) }

// fillKeepingAge is fill for a referral whose scenario chose the child's age (the age decides
// who is told: a school's Encompass notice, say): a new child keeps its date of birth, or
// stays unborn, without an NHS number.
func (c *children) fillKeepingAge(child *intakev1.Child) { c.fillWith(child, true) }

func (c *children) fillWith(child *intakev1.Child, keepAge bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) > 0 && c.rng.Float64() < c.share {
		prev := c.seen[c.rng.IntN(len(c.seen))]
		child.GivenName, child.FamilyName, child.DateOfBirth, child.NhsNumber = prev.GivenName, prev.FamilyName, prev.DateOfBirth, prev.NhsNumber
		child.Unborn, child.DueDate, child.AgeUnknown, child.EstimatedAgeYears = prev.Unborn, prev.DueDate, prev.AgeUnknown, prev.EstimatedAgeYears
		c.repeated++
		return
	}
	child.GivenName = givenNames[c.rng.IntN(len(givenNames))]
	child.FamilyName = familyNames[c.rng.IntN(len(familyNames))] + "-" + strconv.Itoa(len(c.seen))
	if !keepAge {
		dob := time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, c.rng.IntN(16*365))
		child.DateOfBirth = dob.Format("2006-01-02")
	}
	child.NhsNumber = ""
	if !child.GetUnborn() {
		child.NhsNumber, c.nextNHS = syntheticNHSNumber(c.nextNHS)
	}
	c.seen = append(c.seen, proto.Clone(child).(*intakev1.Child))
}

func (c *children) repeats() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.repeated
}

// syntheticNHSNumber is the first valid (modulus 11) number in the 999 range, which is never
// issued to a person, from serial n on, and the serial after it: distinct children get
// distinct numbers.
func syntheticNHSNumber(n int) (string, int) {
	for ; ; n++ {
		d := []int{9, 9, 9}
		for _, c := range fmt.Sprintf("%06d", n%1000000) {
			d = append(d, int(c-'0'))
		}
		sum := 0
		for i, v := range d {
			sum += v * (10 - i)
		}
		check := 11 - sum%11
		if check == 11 {
			check = 0
		}
		if check == 10 {
			continue
		}
		var b strings.Builder
		for _, v := range append(d, check) {
			b.WriteByte(byte('0' + v))
		}
		return b.String(), n + 1
	}
}
