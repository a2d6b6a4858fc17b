package notify_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/mash-hub/mash/pkg/auth"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify/directory"
)

// Each agency hears in the language the directory gives it: a team that works in Welsh gets
// the rule pack's Welsh reason and Welsh names; a bilingual team gets both, Welsh first (and
// the reason a reader of only "reason" sees holds both); an English team gets English alone.
func TestAgencyMessagesFollowTheAgencysLanguage(t *testing.T) {
	e := newEnv(t)
	f := e.directoryFile()
	for i := range f.Agencies {
		switch f.Agencies[i].ID {
		case "rct-csc":
			f.Agencies[i].Language, f.Agencies[i].NameCy = directory.LanguageWelsh, "Tîm dyletswydd Gwasanaethau Plant RhCT"
		case "south-wales-police":
			f.Agencies[i].Language, f.Agencies[i].NameCy = directory.LanguageBilingual, "Uned Diogelu'r Cyhoedd Heddlu De Cymru"
		}
	}
	e.load(t, f)
	resp, err := e.client.ListAgencies(bearer(e.token(t, "rct-mash", auth.RoleManager)), &notifyv1.ListAgenciesRequest{Partnership: partnership})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.GetAgencies() {
		if a.GetId() == "rct-csc" && (a.GetLanguage() != "cy" || a.GetNameCy() != "Tîm dyletswydd Gwasanaethau Plant RhCT") {
			t.Errorf("the directory keeps rct-csc as language %q, Welsh name %q", a.GetLanguage(), a.GetNameCy())
		}
	}

	ref := e.referral(t)
	e.decide(t, confirmed, ref, uuid.NewString(), 1, rulesv1.Level_LEVEL_4, rulesv1.Rag_RAG_AMBER, "childrens_social_care", "police")
	e.settled(t, ref.GetId(), 5)
	const en, cy = "synthetic test decision", "penderfyniad prawf synthetig"

	social := e.ag.social.deliveries()
	if len(social) != 1 {
		t.Fatalf("children's social care got %d deliveries, want 1", len(social))
	}
	m := social[0].msg
	d := m.GetDecision()
	if got := m.GetLanguages(); len(got) != 1 || got[0] != "cy" {
		t.Errorf("the Welsh team's message says its languages are %v", got)
	}
	if d.GetReason() != cy || len(d.GetReasons()) != 1 || d.GetReasons()[0].GetLanguage() != "cy" {
		t.Errorf("the Welsh team's webhook message gives the reason %q (%v), want the Welsh alone: %s", d.GetReason(), d.GetReasons(), social[0].body)
	}
	if n := d.GetPathwayNames(); len(n) != 1 || n[0].GetText() != "Trafodaeth strategaeth" {
		t.Errorf("the Welsh team's pathway name is %v", n)
	}
	if n := d.GetLevelNames(); len(n) != 1 || n[0].GetText() != "Lefel 4 - Adferol" {
		t.Errorf("the Welsh team's level name is %v", n)
	}

	police := e.ag.police.ofKind(notifyv1.NotificationKind_ACTION)
	if len(police) != 1 {
		t.Fatalf("police got %d actions, want 1", len(police))
	}
	d = police[0].msg.GetDecision()
	rs := d.GetReasons()
	if len(rs) != 2 || rs[0].GetLanguage() != "cy" || rs[0].GetText() != cy || rs[1].GetLanguage() != "en" || rs[1].GetText() != en ||
		d.GetReason() != cy+"\n\n"+en {
		t.Errorf("the bilingual team's reason is %q (%v), want the Welsh then the English", d.GetReason(), rs)
	}
	if n := d.GetPathwayNames(); len(n) != 2 || n[0].GetText() != "Trafodaeth strategaeth" || n[1].GetText() != "Strategy discussion" {
		t.Errorf("the bilingual team's pathway names are %v", n)
	}

	for _, dl := range e.ag.school.deliveries() {
		if got := dl.msg.GetLanguages(); len(got) != 1 || got[0] != "en" {
			t.Errorf("the English school's message says its languages are %v", got)
		}
		if r := dl.msg.GetDecision().GetReason(); r != "" && r != en {
			t.Errorf("the English school's reason is %q", r)
		}
	}
}

// A language the directory does not know is refused, naming the field; a team that works in
// Welsh needs its Welsh name.
func TestDirectoryAgencyLanguageIsChecked(t *testing.T) {
	t.Parallel()
	a := directory.Agency{ID: "rct-csc", Partnership: partnership, Name: "RCT", Roles: []string{"childrens_social_care"}, Channel: "nats", Language: "Welsh"}
	a.Normalise()
	ps := a.Check()
	if len(ps) != 1 || ps[0].Field != "language" {
		t.Errorf("language Welsh: problems %v, want one naming language", ps)
	}
	a.Language = "cy"
	if ps := a.Check(); len(ps) != 1 || ps[0].Field != "nameCy" {
		t.Errorf("a Welsh team without a Welsh name: problems %v, want one naming nameCy", ps)
	}
	a.NameCy = "Gwasanaethau Plant RhCT"
	if ps := a.Check(); len(ps) != 0 {
		t.Errorf("a Welsh team with its Welsh name: %v", ps)
	}
	if got := (directory.Agency{Language: "both"}).Languages(); len(got) != 2 || got[0] != "cy" {
		t.Errorf("a bilingual team's languages are %v, want Welsh first", got)
	}
}
