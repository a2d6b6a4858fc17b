package main_test

import (
	"strings"
	"testing"
)

// The CLI refuses a hub role to an agency's client, and a hub credential or console
// account that serves no partnership, each with an error naming the rule; a scoped one is
// created and listed with its partnerships.
func TestCLIRefusesHubRolesToAgenciesAndUnscopedStaff(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"clients", "create", "--agency", "south-wales-police", "--kind", "police", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf"},
			"only clients of kind hub may hold a hub role"},
		{[]string{"clients", "create", "--agency", "cwm-taf-health", "--kind", "health", "--role", "admin"}, "only clients of kind hub may hold a hub role"},
		{[]string{"clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "manager"}, "must serve at least one partnership"},
		{[]string{"clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "manager", "--partnerships", "*,cardiff"}, "give it alone"},
		{[]string{"users", "create", "--username", "a.jones", "--name", "A Jones", "--role", "practitioner"}, "must serve at least one partnership"},
	} {
		out, errOut, code := s.run(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("mash %s: exit %d, stderr %q (stdout %q), want a refusal naming %q", strings.Join(c.args, " "), code, errOut, out, c.want)
		}
	}
	if _, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "practitioner",
		"--partnerships", "rhondda-cynon-taf,merthyr-tydfil"); code != 0 {
		t.Fatalf("scoped practitioner: %s", errOut)
	}
	out, errOut, code := s.run(t, "clients", "list")
	if code != 0 || !strings.Contains(out, "merthyr-tydfil,rhondda-cynon-taf") {
		t.Fatalf("clients list: %d %s %s", code, out, errOut)
	}
}
