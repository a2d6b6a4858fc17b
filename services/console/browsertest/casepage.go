package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// CaseSections are the case page's sections in the order a practitioner reads them.
var CaseSections = []string{"case-references", "case-child", "case-concerns", "case-risk", "case-household", "case-consent",
	"case-referrer", "case-narrative", "case-history", "case-notices", "case-access"}

// Contact is what RunContactAndCase records: a telephone call about two siblings, neither
// with a date of birth (one of unknown age, one with an estimated age).
type Contact struct {
	// Username and Password are a practitioner's.
	Username, Password string
	// Partnership is where the contact goes when the practitioner serves several.
	Partnership string
	// HistoryCase is a referral whose child has an earlier referral, EarlierReference.
	HistoryCase, EarlierReference string
}

// Recorded is a referral the contact made, as the console confirmed it.
type Recorded struct{ ReferralID, Reference string }

// RunContactAndCase signs in as a practitioner and records a telephone contact about two
// siblings through the console's form (adding the second child with the form's own button),
// waits until both referrals are on the queue under their MASH references, finds both by a
// misspelt family name in Search, opens the first's case page from the results and finds every
// section in order (with the narrative, household, consent and referrer the call gave, the
// sibling beside it, and the rules' reason), checks the print view (the site's furniture
// and forms hidden, the reference running on every page), and switches to Welsh to find
// the headings, labels and the rules' reason in Welsh. It opens c.HistoryCase too and
// finds the earlier referral in its history. Screenshots and the printed PDF go to
// artifactsDir.
func RunContactAndCase(t *testing.T, baseURL string, c Contact, artifactsDir string) []Recorded {
	t.Helper()
	path := ExecPath()
	if path == "" {
		if os.Getenv("MASH_REQUIRE_BROWSER") != "" {
			t.Fatal("MASH_REQUIRE_BROWSER is set but no Chromium was found: apt-get install chromium, or set CHROMIUM")
		}
		t.Skip("no Chromium: apt-get install chromium, or set CHROMIUM")
	}
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	baseURL = strings.TrimRight(baseURL, "/")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", "en-GB"), chromedp.Flag("disable-gpu", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			shot(t, ctx, artifactsDir, "contact-failed-"+strings.ReplaceAll(name, " ", "-"))
			t.Fatalf("%s (at %s): %v", name, loc, err)
		}
	}
	eval := func(name, js string) bool {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return ok
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	step("open sign-in", chromedp.Navigate(baseURL+"/console/sign-in"), chromedp.WaitVisible(chromedp.ID("sign-in-form")))
	step("sign in",
		chromedp.SendKeys(chromedp.ID("f-username"), c.Username),
		chromedp.SendKeys(chromedp.ID("f-password"), c.Password),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(`#queue-table, #queue-empty`))

	// The call: a neighbour rings about two small children left alone.
	step("open the contact form", chromedp.Click(`a[href="/console/contacts/new"]`), chromedp.WaitVisible(chromedp.ID("contact-form")))
	if c.Partnership != "" && eval("partnership typed", `document.getElementById("f-partnership").tagName === "INPUT"`) {
		step("partnership", chromedp.SendKeys(chromedp.ID("f-partnership"), c.Partnership))
	}
	step("the first child",
		chromedp.SendKeys(chromedp.ID("f-child-1-given_name"), "Osian"),
		chromedp.SendKeys(chromedp.ID("f-child-1-family_name"), "Prawf"),
		chromedp.Click(chromedp.ID("f-child-1-age-unknown")),
		chromedp.SetValue(chromedp.ID("f-child-1-sex"), "MALE"),
		chromedp.Click(chromedp.ID("add-child")),
		chromedp.WaitVisible(chromedp.ID("child-2")))
	if !eval("first child kept", `document.getElementById("f-child-1-given_name").value === "Osian" && document.getElementById("f-child-1-age-unknown").checked`) {
		t.Fatal("adding a child lost what was typed for the first")
	}
	step("the second child and the call",
		chromedp.SendKeys(chromedp.ID("f-child-2-given_name"), "Nia"),
		chromedp.SendKeys(chromedp.ID("f-child-2-family_name"), "Prawf"),
		chromedp.Click(chromedp.ID("f-child-2-age-estimated")),
		chromedp.SendKeys(chromedp.ID("f-child-2-estimated_age"), "2"),
		chromedp.SetValue(chromedp.ID("f-child-2-sex"), "FEMALE"),
		chromedp.SendKeys(chromedp.ID("f-referrer-name"), "Mrs Eirlys Cymydog"),
		chromedp.SendKeys(chromedp.ID("f-referrer-role"), "Neighbour"),
		chromedp.SendKeys(chromedp.ID("f-referrer-phone"), "07700 900123"),
		chromedp.Click(chromedp.ID("f-referrer-keep_identity")),
		chromedp.SendKeys(chromedp.ID("f-address-line1"), "3 Stryd Prawf"),
		chromedp.SendKeys(chromedp.ID("f-address-town"), "Pontypridd"),
		chromedp.SendKeys(chromedp.ID("f-address-postcode"), "CF37 1AA"),
		chromedp.SetValue(chromedp.ID("f-concern-category"), "NEGLECT"),
		chromedp.SendKeys(chromedp.ID("f-concern-summary"), "Two small children heard crying alone in the flat overnight."),
		chromedp.SendKeys(chromedp.ID("f-concern-location"), "Their flat"),
		chromedp.Click(chromedp.ID("f-risk-immediate_danger")),
		chromedp.SetValue(chromedp.ID("f-household-1-relationship"), "MOTHER"),
		chromedp.SendKeys(chromedp.ID("f-household-1-given_name"), "Carys"),
		chromedp.SendKeys(chromedp.ID("f-household-1-family_name"), "Prawf"),
		chromedp.Click(chromedp.ID("f-household-1-lives_with")),
		chromedp.SetValue(chromedp.ID("f-consent-status"), "NOT_SOUGHT"),
		chromedp.SendKeys(chromedp.ID("f-consent-reason"), "The caller is a neighbour, not the family"),
		chromedp.SendKeys(chromedp.ID("f-narrative"), "The caller knocked and nobody answered; the crying went on for an hour."))
	shot(t, ctx, artifactsDir, "contact-form")
	step("record the contact", chromedp.Click(chromedp.ID("contact-submit")), chromedp.WaitVisible(`#contact-recorded, #error-summary`))
	if eval("refused", `!!document.getElementById("error-summary")`) {
		shot(t, ctx, artifactsDir, "contact-refused")
		t.Fatalf("the contact was refused: %s", text("#error-summary"))
	}
	shot(t, ctx, artifactsDir, "contact-recorded")
	type rec struct {
		ID  string `json:"id"`
		Ref string `json:"ref"`
	}
	recs, err := chromedp.Run(ctx, chromedp.Evaluate[[]rec](
		`[...document.querySelectorAll("#contact-references li")].map(li => ({id: li.dataset.referral, ref: li.querySelector("a").textContent}))`))
	if err != nil || len(recs) != 2 {
		t.Fatalf("the confirmation lists %v (%v), want two referrals", recs, err)
	}
	var out []Recorded
	for _, r := range recs {
		if !strings.HasPrefix(r.Ref, "MASH-") {
			t.Fatalf("confirmation reference %q", r.Ref)
		}
		out = append(out, Recorded{ReferralID: r.ID, Reference: r.Ref})
	}

	// Both appear on the queue under their MASH references once the rules have recommended.
	deadline := time.Now().Add(60 * time.Second)
	for {
		step("queue", chromedp.Navigate(baseURL+"/console/queue?state=all"), chromedp.WaitVisible(`#queue-table, #queue-empty`))
		if eval("on the queue", fmt.Sprintf(`(() => { const t = document.getElementById("queue-table"); return !!t && t.textContent.includes(%q) && t.textContent.includes(%q); })()`,
			out[0].Reference, out[1].Reference)) {
			break
		}
		if time.Now().After(deadline) {
			shot(t, ctx, artifactsDir, "contact-not-queued")
			t.Fatalf("%s and %s are not on the queue", out[0].Reference, out[1].Reference)
		}
		step("wait", chromedp.Sleep(500*time.Millisecond))
	}
	shot(t, ctx, artifactsDir, "contact-queue")

	// Found again by search under a misspelt family name, in the wrong case ("PRAWFF" for
	// Prawf): both siblings among the referrals found; the first child's case opens from
	// there.
	step("search by a misspelt name", chromedp.Click(`nav a[href="/console/search"]`), chromedp.WaitVisible(chromedp.ID("search-form")),
		chromedp.SendKeys(chromedp.ID("f-q"), "PRAWFF"), chromedp.SendKeys(chromedp.ID("f-reason"), "Neighbour rang back about the children"),
		chromedp.Submit(chromedp.ID("f-reason")), chromedp.WaitVisible(`#search-referrals, #search-empty`))
	for _, r := range out {
		if !eval("found by a misspelt name", fmt.Sprintf(`(() => { const t = document.getElementById("search-referrals"); return !!t && !!t.querySelector('tr[data-referral=%q]'); })()`,
			r.ReferralID)) {
			shot(t, ctx, artifactsDir, "contact-not-found")
			t.Fatalf("searching for \"PRAWFF\" does not find %s", r.Reference)
		}
	}
	shot(t, ctx, artifactsDir, "contact-search")

	// The first child's case: every section in order, what the call said, the sibling.
	step("open the case", chromedp.Click(fmt.Sprintf(`#search-referrals a[href="/console/cases/%s"]`, out[0].ReferralID)),
		chromedp.WaitVisible(chromedp.ID("case-references")))
	order := fmt.Sprintf(`(() => { const ids = %s; let last = -1; const all = [...document.querySelectorAll("main section[id]")].map(s => s.id);
		for (const id of ids) { const i = all.indexOf(id); if (i < 0 || i < last) return false; last = i; } return true; })()`, jsList(CaseSections))
	if !eval("sections in order", order) {
		t.Fatal("the case page does not have every section in order")
	}
	for sel, want := range map[string]string{
		"#case-reference": out[0].Reference,
		"#case-child":     "Osian Prawf",
		"#child-age":      "Not known",
		"#case-concerns":  "Two small children heard crying",
		"#case-risk":      "immediate danger",
		"#case-household": "Carys Prawf",
		"#case-consent":   "The caller is a neighbour",
		"#case-referrer":  "Mrs Eirlys Cymydog",
		"#case-narrative": "nobody answered",
		"#case-family":    out[1].Reference,
	} {
		if got := text(sel); !strings.Contains(got, want) {
			t.Errorf("%s shows %q, want it to include %q", sel, got, want)
		}
	}
	// The access trail names this read once the audit log has recorded it from the bus, which
	// may be just after the page was served: reload until it does.
	caseURL := baseURL + "/console/cases/" + out[0].ReferralID
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(text("#case-access"), c.Username); {
		if time.Now().After(deadline) {
			t.Fatalf("#case-access shows %q, want it to include %q", text("#case-access"), c.Username)
		}
		step("reload the case", chromedp.Navigate(caseURL), chromedp.WaitVisible(chromedp.ID("case-references")))
	}
	if got := text("#primary-reason"); !strings.Contains(got, "in immediate danger") {
		t.Errorf("the case page gives the rule reason %q, want the immediate-danger rule's", got)
	}
	if !eval("household relationship", `document.getElementById("case-household").textContent.includes("Mother")`) {
		t.Error("the household does not name the relationship")
	}
	if !eval("confidential", `!!document.getElementById("referrer-confidential")`) {
		t.Error("the case does not say the referrer asked to stay unknown to the family")
	}
	if !eval("phone normalised", `document.getElementById("case-referrer").textContent.includes("+447700900123")`) {
		t.Error("the referrer's phone is not shown in its E.164 form")
	}
	shot(t, ctx, artifactsDir, "contact-case")

	// The print view: the same content, no furniture or forms, the reference on every page.
	step("print media", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}))
	if !eval("print view", `(() => { const r = getComputedStyle(document.querySelector(".print-ref"));
		const h = getComputedStyle(document.querySelector(".site-header"));
		const forms = [...document.querySelectorAll("main form")].every(f => getComputedStyle(f).display === "none");
		return r.display === "block" && r.position === "fixed" && h.display === "none" && forms &&
			getComputedStyle(document.getElementById("case-narrative")).display !== "none"; })()`) {
		t.Error("the print view does not hide the furniture and forms, or does not run the reference on every page")
	}
	if !eval("print ref", fmt.Sprintf(`document.querySelector(".print-ref").textContent.includes(%q)`, out[0].Reference)) {
		t.Error("the print view's running head does not carry the reference")
	}
	pdf, err := chromedp.Run(ctx, chromedp.PrintToPDF())
	if err != nil || len(pdf) == 0 {
		t.Fatalf("print to PDF: %v", err)
	}
	if err := os.WriteFile(filepath.Join(artifactsDir, "contact-case.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	step("screen media", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: ""})
		return err
	}))

	// In Welsh.
	step("Welsh", chromedp.Click(chromedp.ID("lang-switch")), chromedp.WaitVisible(chromedp.ID("case-references")))
	if !eval("Welsh page", `document.documentElement.lang === "cy" && document.getElementById("child-title").textContent === "Y plentyn" &&
		document.getElementById("case-household").textContent.includes("Mam")`) {
		t.Error("the case page in Welsh does not show its headings and labels in Welsh")
	}
	// The rules' reason in Welsh, from the pack's Welsh: the call said the children are in
	// immediate danger, and that rule's reason leads.
	if got := text("#primary-reason"); !strings.Contains(got, "mewn perygl uniongyrchol") {
		t.Errorf("the case page in Welsh gives the rule reason %q, want the immediate-danger rule's Welsh", got)
	}
	shot(t, ctx, artifactsDir, "contact-case-cy")
	step("English", chromedp.Click(chromedp.ID("lang-switch")), chromedp.WaitVisible(chromedp.ID("case-references")))

	if c.HistoryCase != "" {
		step("the case with history", chromedp.Navigate(baseURL+"/console/cases/"+c.HistoryCase), chromedp.WaitVisible(chromedp.ID("case-history")))
		if got := text("#case-history"); !strings.Contains(got, c.EarlierReference) {
			t.Errorf("the history shows %q, want the earlier referral %s", got, c.EarlierReference)
		}
		shot(t, ctx, artifactsDir, "case-with-history")
	}
	return out
}

func jsList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ",") + "]"
}
