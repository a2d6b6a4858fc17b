package browsertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// PartnerVisit is a partner's walk-through from an email's link.
type PartnerVisit struct {
	// Link is the link the email carried (<consoleUrl>/referrals/<id>).
	Link string
	// Username and Password are a partner account's.
	Username, Password string
	// NotificationID is the notification to acknowledge, RequestID the information request
	// to answer, Answer the answer and Disagreement the reason of the disagreement raised.
	NotificationID, RequestID, Answer, Disagreement string
	// Manager and ManagerPassword are a hub manager's, who then finds the disagreement.
	Manager, ManagerPassword string
}

// RunPartner opens v.Link signed out, as a partner agency's person following their email
// would: the console asks them to sign in and brings them back to the referral in the
// partner view, where they acknowledge the notification, answer the information request
// and raise a disagreement by keyboard and mouse. Then a hub manager signs in and finds the
// disagreement in the console's list and on the case. Screenshots go to artifactsDir.
func RunPartner(t *testing.T, baseURL string, v PartnerVisit, artifactsDir string) {
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
			shot(t, ctx, artifactsDir, "partner-failed-"+strings.ReplaceAll(name, " ", "-"))
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

	// The link, signed out: the sign-in page, which will bring the partner back.
	step("open the email's link", chromedp.Navigate(v.Link), chromedp.WaitVisible(chromedp.ID("sign-in-form")))
	if !eval("next", `(document.querySelector('#sign-in-form input[name="next"]') || {}).value.startsWith("/console/referrals/")`) {
		t.Fatal("the sign-in form does not lead back to the referral")
	}
	step("sign in as the partner",
		chromedp.SendKeys(chromedp.ID("f-username"), v.Username),
		chromedp.SendKeys(chromedp.ID("f-password"), v.Password),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("partner-referral")))
	id := v.Link[strings.LastIndex(v.Link, "/")+1:]
	if !eval("the referral", fmt.Sprintf(`document.getElementById("partner-referral").dataset.referral === %q`, id)) {
		t.Fatalf("the link did not open referral %s", id)
	}
	if eval("hub menu", `!!document.querySelector('a[href="/console/queue"]')`) {
		t.Fatal("a partner is offered the hub's queue")
	}
	shot(t, ctx, artifactsDir, "partner-referral")

	step("acknowledge",
		chromedp.SendKeys(chromedp.ID("f-note-"+v.NotificationID), "Received by the duty sergeant"),
		chromedp.Click(chromedp.ID("ack-"+v.NotificationID)),
		after("done=acknowledged"))
	if !eval("acknowledged", fmt.Sprintf(`!!document.getElementById("acknowledged-%s")`, v.NotificationID)) {
		t.Fatal("after acknowledging, the notification does not show as acknowledged")
	}
	step("answer",
		chromedp.SendKeys(chromedp.ID("f-answer-"+v.RequestID), v.Answer),
		chromedp.Click(chromedp.ID("answer-"+v.RequestID)),
		after("done=partner_answered"))
	if !eval("answered", fmt.Sprintf(`(document.getElementById("answer-text-%s") || {textContent: ""}).textContent.includes(%q)`, v.RequestID, v.Answer)) {
		t.Fatal("after answering, the request does not show the answer")
	}
	step("raise a disagreement",
		chromedp.Click(`#raise summary`),
		chromedp.SendKeys(chromedp.ID("f-reason"), v.Disagreement),
		chromedp.Click(chromedp.ID("raise-submit")),
		after("done=disagreement_raised"))
	if !eval("raised", fmt.Sprintf(`[...document.querySelectorAll("article.disagreement")].some(a => a.textContent.includes(%q))`, v.Disagreement)) {
		t.Fatal("after raising, the disagreement is not on the page")
	}
	shot(t, ctx, artifactsDir, "partner-after")
	step("partner inbox", chromedp.Navigate(baseURL+"/console/partner"), chromedp.WaitVisible(chromedp.ID("partner-disagreements")))
	shot(t, ctx, artifactsDir, "partner-inbox")
	step("partner signs out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in-form")))

	// A hub manager finds it among the disagreements and on the case.
	step("sign in as the manager",
		chromedp.SendKeys(chromedp.ID("f-username"), v.Manager),
		chromedp.SendKeys(chromedp.ID("f-password"), v.ManagerPassword),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(`#queue-table, #queue-empty`))
	step("disagreements", chromedp.Navigate(baseURL+"/console/disagreements?open=on"), chromedp.WaitVisible(chromedp.ID("disagreements-table")))
	if !eval("listed", fmt.Sprintf(`[...document.querySelectorAll("#disagreements-table tbody tr")].some(r => r.textContent.includes(%q))`, v.Disagreement)) {
		t.Fatal("the hub manager does not see the partner's disagreement in the list")
	}
	shot(t, ctx, artifactsDir, "hub-disagreements")
	step("the case", chromedp.Navigate(baseURL+"/console/cases/"+id), chromedp.WaitVisible(chromedp.ID("disagreements")))
	if !eval("on the case", fmt.Sprintf(`document.getElementById("disagreements").textContent.includes(%q)`, v.Disagreement)) {
		t.Fatal("the hub manager does not see the partner's disagreement on the case")
	}
	step("manager signs out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in-form")))
}
