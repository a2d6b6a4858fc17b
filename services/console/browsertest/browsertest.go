// Package browsertest drives the console in real headless Chromium, as a person would:
// sign in, work the most urgent case, check the queue and the management information, and
// keep a full-page screenshot of each main screen. It runs against any running console
// (the full mash binary, or a test server), so the same walk-through checks both.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ExecPath finds Chromium: $CHROMIUM, /usr/bin/chromium, or chromium/google-chrome on
// PATH. Empty when there is none.
func ExecPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// Run signs in at baseURL (e.g. http://127.0.0.1:8080) as username, whose role must be
// able to claim and decide cases and see the dashboard (a manager), then:
// opens the queue, reaches the most urgent case by keyboard alone (Tab to the first case
// link, Enter), claims it, overrides its level with a reason, checks it has left the
// awaiting queue, opens the dashboard and checks it rendered, and saves full-page PNGs
// of sign-in, queue, case, dashboard, notifications, professional disagreements and rule
// packs into artifactsDir.
// The queue must hold at least one case awaiting a decision.
func Run(t *testing.T, baseURL, username, password, artifactsDir string) {
	t.Helper()
	path := ExecPath()
	if path == "" {
		// scripts/test installs Chromium and sets MASH_REQUIRE_BROWSER, so CI never passes
		// without having run the browser.
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
			shot(t, ctx, artifactsDir, "failed-"+strings.ReplaceAll(name, " ", "-"))
			t.Fatalf("%s (at %s): %v", name, loc, err)
		}
	}
	eval := func(name, js string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}

	// Sign in. The first Tab from the top of the page reaches the skip link.
	step("open sign-in", chromedp.Navigate(baseURL+"/console/sign-in"), chromedp.WaitVisible(chromedp.ID("sign-in-form")))
	step("tab to skip link", chromedp.KeyEvent("\t"))
	if !eval("skip link focus", `document.activeElement && document.activeElement.id === "skip-link"`) {
		t.Fatal("the first Tab does not reach the skip link")
	}
	shot(t, ctx, artifactsDir, "signin")
	step("sign in",
		chromedp.SendKeys(chromedp.ID("f-username"), username),
		chromedp.SendKeys(chromedp.ID("f-password"), password),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(`#queue-table, #queue-empty`))
	if eval("queue empty", `!!document.getElementById("queue-empty")`) {
		t.Fatal("the queue is empty: submit a referral before the browser test")
	}
	shot(t, ctx, artifactsDir, "queue")

	// The most urgent case is the first row. Reach its link by keyboard and open it.
	referral, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#queue-table tbody tr").dataset.referral`))
	if err != nil || referral == "" {
		t.Fatalf("first queue row: %q %v", referral, err)
	}
	reached := false
	for range 80 {
		step("tab", chromedp.KeyEvent("\t"))
		if eval("focus", `document.activeElement && document.activeElement.classList.contains("case-link")`) {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("Tab never reached a case link in the queue")
	}
	if !eval("first link", fmt.Sprintf(`document.activeElement.closest("tr").dataset.referral === %q`, referral)) {
		t.Fatal("the first case link reached by Tab is not the most urgent case")
	}
	step("open case with Enter", chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("case-status")))

	// How many human decisions changed the rules' level, before this one: the dashboard must
	// count the override below.
	changed := func() int {
		t.Helper()
		step("dashboard figures", chromedp.Navigate(baseURL+"/console/dashboard"), chromedp.WaitVisible(chromedp.ID("kpis")))
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`parseInt(document.getElementById("kpi-step-ups").textContent, 10) + parseInt(document.getElementById("kpi-step-downs").textContent, 10)`))
		if err != nil {
			t.Fatalf("dashboard step-ups and step-downs: %v", err)
		}
		return n
	}
	before := changed()
	step("back to the case", chromedp.Navigate(baseURL+"/console/cases/"+referral), chromedp.WaitVisible(chromedp.ID("case-status")))

	// Claim it, then override the level with a reason.
	step("claim", chromedp.Click(chromedp.ID("claim")), chromedp.WaitVisible(chromedp.ID("flash")))
	if !eval("claimed", `document.getElementById("claim-status").textContent.includes("You are working this case")`) {
		t.Fatal("after claiming, the case does not say you are working it")
	}
	level, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("case-status").dataset.level`))
	if err != nil {
		t.Fatal(err)
	}
	newLevel := "LEVEL_4"
	if level == "LEVEL_4" {
		newLevel = "LEVEL_3B"
	}
	step("override",
		chromedp.Click(chromedp.ID("f-action-override")),
		chromedp.SetValue(chromedp.ID("f-level"), newLevel),
		chromedp.SendKeys(chromedp.ID("f-reason"), "Browser test: the school reported a disclosure today that the referral did not include."),
		chromedp.Click(chromedp.ID("decide-submit")),
		after("done=overridden"))
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("case-status").dataset.level`)); got != newLevel {
		t.Fatalf("after the override the level is %s, want %s", got, newLevel)
	}
	shot(t, ctx, artifactsDir, "case")

	// The decided case has left the awaiting queue.
	step("queue again", chromedp.Navigate(baseURL+"/console/queue"), chromedp.WaitVisible(`#queue-table, #queue-empty`))
	if eval("still queued", fmt.Sprintf(`!!document.querySelector('tr[data-referral=%q]')`, referral)) {
		t.Fatalf("case %s is still in the awaiting queue after the decision", referral)
	}

	// Management information.
	step("dashboard", chromedp.Navigate(baseURL+"/console/dashboard"), chromedp.WaitVisible(chromedp.ID("kpis")))
	if !eval("charts", `document.querySelectorAll("svg.bars, .chart p").length > 0 && !!document.getElementById("csv-link")`) {
		t.Fatal("the dashboard has no charts or CSV link")
	}
	shot(t, ctx, artifactsDir, "dashboard")
	if after := changed(); after != before+1 {
		t.Fatalf("the dashboard counts %d step-ups and step-downs after the override, %d before: want one more", after, before)
	}

	step("notifications", chromedp.Navigate(baseURL+"/console/notifications"), chromedp.WaitVisible(`#notifications-table, #notifications-empty`))
	shot(t, ctx, artifactsDir, "notifications")
	step("disagreements", chromedp.Navigate(baseURL+"/console/disagreements"), chromedp.WaitVisible(`#disagreements-table, #disagreements-empty`))
	shot(t, ctx, artifactsDir, "disagreements")
	step("rule packs", chromedp.Navigate(baseURL+"/console/packs"), chromedp.WaitVisible(`h1`))
	shot(t, ctx, artifactsDir, "packs")

	step("sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in-form")))
}

// after waits until the page is the one a form redirected to with done=<what>, and
// loaded. It polls from Go, because an in-page poll dies with the page it runs in.
func after(done string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`location.search.includes(%q) && document.readyState === "complete" && !!document.getElementById("flash")`, done)
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			if time.Now().After(deadline) {
				return chromedp.Void{}, fmt.Errorf("no page with %s after 30s (last error: %v)", done, err)
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Errorf("save %s: %v", p, err)
	}
}
