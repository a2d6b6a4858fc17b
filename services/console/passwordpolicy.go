package console

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// MinPasswordLen is the shortest password an account may have (NCSC: length beats rules).
const MinPasswordLen = 12

// maxPasswordBytes keeps the cost of hashing a password to what it should be.
const maxPasswordBytes = 1024

// commonPasswordsText is the deny list: widely used passwords and the words and patterns
// people build them from, one a line, lower case. It is curated for this project (no
// external list is fetched or copied) and checked together with the variations people make
// of them: capitals, digits or symbols tacked on either end, look-alike digits, a word
// said twice.
//
//go:embed commonpasswords.txt
var commonPasswordsText string

// commonPasswords is the deny list as a set.
var commonPasswords = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, line := range strings.Split(commonPasswordsText, "\n") {
		if w := strings.TrimSpace(line); w != "" && !strings.HasPrefix(w, "#") {
			m[strings.ToLower(w)] = struct{}{}
		}
	}
	return m
}()

// Errors of the password policy; each names the field and what to do instead.
var (
	ErrPasswordCommon      = errors.New("password: too easy to guess: it is, or is built on, a widely used password; choose three or four random words")
	ErrPasswordHasUsername = errors.New("password: must not contain the username or a part of it")
	ErrPasswordPattern     = errors.New("password: too easy to guess: it repeats a few characters or follows the keyboard or the alphabet; choose three or four random words")
)

// CheckNewPassword holds a password being set for an account to the console's policy:
// at least MinPasswordLen characters, at most maxPasswordBytes, not on the deny list (nor
// a simple variation of an entry), not containing the username or a part of it, and not a run of a few repeated characters or a keyboard or alphabet sequence.
func CheckNewPassword(username, password string) error {
	switch {
	case len([]rune(password)) < MinPasswordLen:
		return fmt.Errorf("password: at least %d characters (a passphrase of three or four words is good)", MinPasswordLen)
	case len(password) > maxPasswordBytes:
		return fmt.Errorf("password: at most %d bytes", maxPasswordBytes)
	}
	lower := strings.ToLower(password)
	if containsUsername(lower, username) {
		return ErrPasswordHasUsername
	}
	if isCommon(lower) {
		return ErrPasswordCommon
	}
	if isPattern(lower) {
		return ErrPasswordPattern
	}
	return nil
}

// containsUsername reports whether the (lower-case) password contains the username, its
// reverse, or a part of it of four characters or more ("a.jones": "jones").
func containsUsername(lower, username string) bool {
	username = strings.ToLower(strings.TrimSpace(username))
	if len(username) >= 3 && (strings.Contains(lower, username) || strings.Contains(lower, reverse(username))) {
		return true
	}
	parts := strings.FieldsFunc(username, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, p := range parts {
		if len([]rune(p)) >= 4 && strings.Contains(lower, p) {
			return true
		}
	}
	return false
}

// lookalikes undoes the digit and symbol swaps people make for letters ("p@ssw0rd").
var lookalikes = strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t", "8", "b", "@", "a", "$", "s", "!", "i", "|", "l", "+", "t")

// isCommon reports whether the (lower-case) password is on the deny list, or is an entry
// with spaces, capitals, look-alike characters, or digits and symbols at either end, or an
// entry said more than once.
func isCommon(lower string) bool {
	candidates := []string{lower, strings.Join(strings.Fields(lower), "")}
	for _, c := range candidates[:2] {
		// The word inside digits and symbols ("Summer2024!"), and inside digits and the
		// symbols that are not look-alikes ("$unshine99").
		core := strings.TrimFunc(c, func(r rune) bool { return !unicode.IsLetter(r) })
		inner := strings.TrimFunc(c, func(r rune) bool { return unicode.IsDigit(r) || strings.ContainsRune("!?.,#*_-~^&%()[]{}<>/\\'\"", r) })
		candidates = append(candidates, core, lookalikes.Replace(c), lookalikes.Replace(core), lookalikes.Replace(inner))
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if _, ok := commonPasswords[c]; ok {
			return true
		}
		if unit := repeatedUnit(c); unit != "" {
			if _, ok := commonPasswords[unit]; ok {
				return true
			}
		}
	}
	return false
}

// repeatedUnit returns u when s is u written two or more times ("monkeymonkey"), else "".
func repeatedUnit(s string) string {
	for n := 1; n <= len(s)/2; n++ {
		if len(s)%n == 0 && strings.Repeat(s[:n], len(s)/n) == s {
			return s[:n]
		}
	}
	return ""
}

// sequences are runs people type without thinking: keyboard rows and columns, the
// alphabet and the digits; each is checked forwards and backwards.
var sequences = []string{
	"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
	"01234567890123456789012345678901234567890",
	"qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
	"qwertyuiop[]asdfghjkl;'#zxcvbnm,./",
	"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
	"zaq1xsw2cde3vfr4bgt5nhy6mju7,ki8.lo9/;p0",
	"qazwsxedcrfvtgbyhnujmikolp",
	"1q2w3e4r5t6y7u8i9o0p",
	"!@#$%^&*()_+!@#$%^&*()_+",
	"azertyuiopqsdfghjklmwxcvbn",
	"qwertzuiopasdfghjklyxcvbnm",
}

// isPattern reports whether the (lower-case) password uses four characters or fewer over
// and over ("abababababab"), or is one run of a sequence ("1234567890ab" is not:
// "qwertyuiop[]" is).
func isPattern(lower string) bool {
	distinct := map[rune]struct{}{}
	for _, r := range lower {
		distinct[r] = struct{}{}
	}
	if len(distinct) <= 4 {
		return true
	}
	compact := strings.Join(strings.Fields(lower), "")
	for _, seq := range sequences {
		if strings.Contains(seq, compact) || strings.Contains(reverse(seq), compact) {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
