package console

import (
	"fmt"
	"time"
)

// Month and weekday names for dates written in words. English follows en-GB ("7 Dec
// 2026"); Welsh the forms Welsh public bodies use ("7 Rhag 2026").
var (
	monthsShort = map[string][12]string{
		"en": {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
		"cy": {"Ion", "Chwef", "Maw", "Ebr", "Mai", "Meh", "Gorff", "Awst", "Medi", "Hyd", "Tach", "Rhag"},
	}
	monthsLong = map[string][12]string{
		"en": {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		"cy": {"Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin", "Gorffennaf", "Awst", "Medi", "Hydref", "Tachwedd", "Rhagfyr"},
	}
	weekdays = map[string][7]string{
		"en": {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"},
		"cy": {"Sul", "Llun", "Maw", "Mer", "Iau", "Gwe", "Sad"},
	}
)

// formatWhen writes an instant in the hub's zone, in lang: "Mon 7 Dec 2026, 14:05" or
// "Llun 7 Rhag 2026, 14:05" (24-hour clock in both, as the hub works).
func formatWhen(lang string, t time.Time) string {
	if _, ok := monthsShort[lang]; !ok {
		lang = "en"
	}
	t = t.In(london)
	return fmt.Sprintf("%s %d %s %d, %02d:%02d", weekdays[lang][t.Weekday()], t.Day(), monthsShort[lang][t.Month()-1], t.Year(),
		t.Hour(), t.Minute())
}

// formatDate writes a calendar date in lang: "7 May 2019" or "7 Mai 2019".
func formatDate(lang string, d time.Time) string {
	if _, ok := monthsLong[lang]; !ok {
		lang = "en"
	}
	return fmt.Sprintf("%d %s %d", d.Day(), monthsLong[lang][d.Month()-1], d.Year())
}
