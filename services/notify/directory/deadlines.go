package directory

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mash-hub/mash/pkg/calendar"
)

// How long an agency has to acknowledge, besides a fixed duration.
const (
	// WithinWorkingDay: one working day of the hub's calendar.
	WithinWorkingDay = "working-day"
	// WithinSchoolDay: before the start of the next school day (the partnership's school
	// calendar), for schools, which cannot act at night or in the holidays.
	WithinSchoolDay = "school-day"
)

// AckDeadline says how long agencies filling Role have to acknowledge a notification of RAG
// ("*" matches any role or RAG): a duration ("1h", "90m"), WithinWorkingDay or
// WithinSchoolDay.
type AckDeadline struct {
	Role   string `yaml:"role" json:"role"`
	RAG    string `yaml:"rag" json:"rag"`
	Within string `yaml:"within" json:"within"`
}

// DefaultAckDeadlines apply after a partnership's own: schools before the next school day,
// early help within one working day, and otherwise Red within the partnership's Red minutes
// and Amber within one working day. Green and no rating expect no acknowledgement.
var DefaultAckDeadlines = []AckDeadline{
	{Role: RoleSchoolDSL, RAG: "*", Within: WithinSchoolDay},
	{Role: "education_welfare", RAG: "*", Within: WithinSchoolDay},
	{Role: "early_help", RAG: "RED", Within: WithinWorkingDay},
	{Role: "early_help", RAG: "AMBER", Within: WithinWorkingDay},
	{Role: "*", RAG: "AMBER", Within: WithinWorkingDay},
}

var ackRAGs = []string{"*", "RED", "AMBER", "GREEN", "NONE"}

// Check names what is wrong with d.
func (d AckDeadline) Check() error {
	switch {
	case d.Role != "*" && !rolePattern.MatchString(d.Role):
		return fmt.Errorf("role %q: use a role as rule packs name it (police, school_dsl, ...) or *", d.Role)
	case !slices.Contains(ackRAGs, d.RAG):
		return fmt.Errorf("rag %q: use RED, AMBER, GREEN, NONE or *", d.RAG)
	case d.Within == WithinWorkingDay || d.Within == WithinSchoolDay:
		return nil
	}
	dur, err := time.ParseDuration(d.Within)
	if err != nil || dur <= 0 || dur > 7*24*time.Hour {
		return fmt.Errorf("within %q: use a duration up to 168h (e.g. 1h, 90m), %s or %s", d.Within, WithinWorkingDay, WithinSchoolDay)
	}
	return nil
}

// AckDue is when an acknowledgement of a notification to role at rag, sent at now, is due
// under the partnership's deadlines then the defaults (a Red deadline not otherwise set is
// RedAckMinutes); zero when none is expected. hub is the hub's working calendar.
func (p Partnership) AckDue(role, rag string, now time.Time, hub *calendar.Calendar) (time.Time, error) {
	rag = strings.ToUpper(rag)
	rules := append(slices.Clone(p.AckDeadlines), DefaultAckDeadlines...)
	rules = append(rules, AckDeadline{Role: "*", RAG: "RED", Within: fmt.Sprintf("%dm", p.RedAckMinutes)})
	for _, d := range rules {
		if (d.Role != "*" && d.Role != role) || (d.RAG != "*" && d.RAG != rag) {
			continue
		}
		switch d.Within {
		case WithinWorkingDay:
			return hub.AddWorkingHours(now, hub.WorkingDayLength()).UTC(), nil
		case WithinSchoolDay:
			school, err := p.SchoolCalendar()
			if err != nil {
				return time.Time{}, fmt.Errorf("partnership %s: school calendar: %w", p.ID, err)
			}
			return school.NextWorkingDayStart(now).UTC(), nil
		}
		dur, err := time.ParseDuration(d.Within)
		if err != nil {
			return time.Time{}, fmt.Errorf("partnership %s: ack deadline for %s %s: %w", p.ID, d.Role, d.RAG, err)
		}
		return now.Add(dur).UTC(), nil
	}
	return time.Time{}, nil
}
