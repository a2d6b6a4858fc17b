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

// SearchVisit is a walk through search and a child record: who signs in, what they type
// (a misspelt name, say), and the name the results must show.
type SearchVisit struct {
	Username, Password string
	Query, Reason      string
	// WantName is the child's name as recorded; the search must show it.
	WantName string
}

// RunSearch signs in at baseURL, opens Search from the menu, searches for v.Query with
// v.Reason, checks the results show v.WantName with what matched, opens the first child
// found, and expects a possible match there (a record with the same name and date of birth
// that the rules did not link). It merges that record into this one with a reason, checks
// the merge is listed with its reason and the referrals moved, then undoes it and checks
// the possible match is offered no more (a person has decided the records differ).
// Screenshots: search, child, child-merged, child-unmerged.
func RunSearch(t *testing.T, baseURL string, v SearchVisit, artifactsDir string) {
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
			shot(t, ctx, artifactsDir, "failed-"+strings.ReplaceAll(name, " ", "-"))
			t.Fatalf("%s (at %s): %v", name, loc, err)
		}
	}
	eval := func(name, js string) bool {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return got
	}
	text := func(name, js string) string {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return got
	}

	step("sign in", chromedp.Navigate(baseURL+"/console/sign-in"), chromedp.WaitVisible(chromedp.ID("sign-in-form")),
		chromedp.SendKeys(chromedp.ID("f-username"), v.Username), chromedp.SendKeys(chromedp.ID("f-password"), v.Password),
		chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(`#queue-table, #queue-empty`))
	step("open search from the menu", chromedp.Click(`nav a[href="/console/search"]`), chromedp.WaitVisible(chromedp.ID("search-form")))

	// Without a reason the search is refused, and the page says so beside the field.
	step("search without a reason", chromedp.SendKeys(chromedp.ID("f-q"), v.Query), chromedp.Submit(chromedp.ID("f-q")),
		chromedp.WaitVisible(chromedp.ID("e-reason")))
	step("search", chromedp.SendKeys(chromedp.ID("f-reason"), v.Reason), chromedp.Submit(chromedp.ID("f-reason")),
		chromedp.WaitVisible(`#search-referrals, #search-empty`))
	if eval("no results", `!!document.getElementById("search-empty")`) {
		t.Fatalf("searching for %q found nothing", v.Query)
	}
	if got := text("first child", `document.querySelector("#search-children tbody tr th").textContent.trim()`); got != v.WantName {
		t.Fatalf("search for %q shows %q first, want %q", v.Query, got, v.WantName)
	}
	if !eval("match basis", `document.querySelector("#search-referrals tbody tr td:last-child").textContent.includes("name")`) {
		t.Fatal("the results do not say they matched on the name")
	}
	shot(t, ctx, artifactsDir, "search")

	step("open the child", chromedp.Click(`#search-children tbody tr a.child-link`), chromedp.WaitVisible(chromedp.ID("child-matches")))
	child := text("child id", `location.pathname.split("/").pop()`)
	match := text("possible match", `document.querySelector("#child-matches tbody tr").dataset.child`)
	basis := text("basis", `document.querySelector("#child-matches tbody tr .match-basis").textContent`)
	if !strings.Contains(basis, "different postcode") {
		t.Fatalf("possible match basis %q, want it to say the postcode differs", basis)
	}
	before := text("referrals", `String(document.querySelectorAll("#child-referrals tbody tr").length)`)
	shot(t, ctx, artifactsDir, "child")

	step("merge", chromedp.Click(`#child-matches tbody tr summary`),
		chromedp.SendKeys(fmt.Sprintf("#merge-reason-%s", match), "Same child: the family moved; confirmed with the school"),
		chromedp.Submit(fmt.Sprintf("#merge-reason-%s", match)), after("done=merged"))
	afterN := text("referrals after", `String(document.querySelectorAll("#child-referrals tbody tr").length)`)
	if afterN <= before {
		t.Fatalf("after the merge the record shows %s referrals, before %s", afterN, before)
	}
	if !eval("merge listed", `!!document.querySelector('#child-corrections li[data-kind="MERGE"]') && document.getElementById("child-corrections").textContent.includes("confirmed with the school")`) {
		t.Fatal("the merge and its reason are not listed on the record")
	}
	if !eval("matches gone", `!!document.getElementById("child-no-matches")`) {
		t.Fatal("the merged record is still offered as a possible match")
	}
	shot(t, ctx, artifactsDir, "child-merged")

	step("unmerge", chromedp.Click(`#child-corrections li[data-kind="MERGE"] summary`),
		chromedp.SendKeys(`#child-corrections .unmerge-form input[name="reason"]`, "Different children after all"),
		chromedp.Submit(`#child-corrections .unmerge-form input[name="reason"]`), after("done=unmerged"))
	if got := text("referrals restored", `String(document.querySelectorAll("#child-referrals tbody tr").length)`); got != before {
		t.Fatalf("after undoing the merge the record shows %s referrals, want %s", got, before)
	}
	if !eval("not offered again", `!!document.getElementById("child-no-matches")`) {
		t.Fatal("a record a person separated from this one is offered again")
	}
	if loc := text("location", `location.pathname`); !strings.HasSuffix(loc, child) {
		t.Fatalf("after undoing the merge the page is %s, want the child record %s", loc, child)
	}
	shot(t, ctx, artifactsDir, "child-unmerged")
}
