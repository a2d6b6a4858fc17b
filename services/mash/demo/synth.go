package demo

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Every name, number and address here is synthetic. The family names are plainly invented
// so nobody mistakes demo data for a real child; NHS numbers come from the 999 range, which
// the NHS reserves for testing and never issues; telephone numbers are in Ofcom's 01632
// 960 drama range; email domains end in .example.

var (
	boysNames  = []string{"Alex", "Dylan", "Osian", "Rhys", "Tomos", "Jac", "Evan", "Harri", "Noah", "Leo", "Cai", "Ioan"}
	girlsNames = []string{"Cerys", "Ffion", "Seren", "Erin", "Mali", "Ela", "Lowri", "Nia", "Isla", "Megan", "Alys", "Efa"}
	// familyNames are invented on purpose: none is a common real surname.
	familyNames = []string{"Exampleton", "Sampleford", "Testwood", "Mockridge", "Placeholder", "Fictionby",
		"Demoson", "Madeupson", "Synthwaite", "Pretendon", "Inventley", "Notrealle"}
	motherNames  = []string{"Sian", "Rhian", "Carys", "Emma", "Bethan", "Kelly", "Leanne", "Angharad"}
	partnerNames = []string{"Gareth", "Lee", "Craig", "Dai", "Ryan", "Owain", "Jamie", "Kyle"}
	streets      = []string{"Example Street", "Sample Road", "Demo Terrace", "Placeholder Close", "Fictional Avenue", "Testing Lane", "Mock Row"}
	schools      = []string{"Ysgol Gynradd Example", "Sample Community Primary", "Demo Valley Primary", "Ysgol Uwchradd Placeholder",
		"Testwood Comprehensive", "Example High School"}
)

// place is a town with the postcode districts that serve it.
type place struct {
	town      string
	districts []string
}

// places are real towns of the two demo partnerships with their real postcode districts;
// the inward code is random, so an address is well formed but not anyone's.
var places = map[string][]place{
	"rhondda-cynon-taf": {
		{"Pontypridd", []string{"CF37"}}, {"Porth", []string{"CF39"}}, {"Tonypandy", []string{"CF40"}},
		{"Treorchy", []string{"CF42"}}, {"Ferndale", []string{"CF43"}}, {"Aberdare", []string{"CF44"}},
		{"Mountain Ash", []string{"CF45"}}, {"Llantrisant", []string{"CF72"}},
	},
	"merthyr-tydfil": {
		{"Merthyr Tydfil", []string{"CF47", "CF48"}}, {"Treharris", []string{"CF46"}},
	},
}

// inwardLetters are the letters Royal Mail uses in the inward code (no C, I, K, M, O, V).
const inwardLetters = "ABDEFGHJLNPQRSTUWXYZ"

// NHSNumber returns a ten-digit NHS number in the 999 test range with a valid modulus-11
// check digit.
func NHSNumber(r *rand.Rand) string {
	for {
		d := [9]int{9, 9, 9}
		for i := 3; i < 9; i++ {
			d[i] = r.IntN(10)
		}
		sum := 0
		for i, v := range d {
			sum += v * (10 - i)
		}
		check := 11 - sum%11
		if check == 10 {
			continue // such a number is never valid; draw again
		}
		if check == 11 {
			check = 0
		}
		s := ""
		for _, v := range d {
			s += strconv.Itoa(v)
		}
		return s + strconv.Itoa(check)
	}
}

// Postcode returns a well-formed postcode in one of district's sectors, e.g. "CF37 4QT".
func Postcode(r *rand.Rand, district string) string {
	return fmt.Sprintf("%s %d%c%c", district, 1+r.IntN(9), inwardLetters[r.IntN(len(inwardLetters))], inwardLetters[r.IntN(len(inwardLetters))])
}

// phone is a number in Ofcom's range reserved for drama, so it reaches nobody.
func phone(r *rand.Rand) string {
	return fmt.Sprintf("01632 960%03d", r.IntN(1000))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }
