package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the path of Debian's chromium. Without one the test is
// skipped, unless CI=true, where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH; CI must install it (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH; install it (apt-get install chromium) to run the browser test")
	return ""
}

// newBrowser starts a headless chromium with a fresh profile and returns
// the context of its first tab. The browser stops when the test ends.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser, without a timeout
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// The sandbox EHR page, a click on "Launch app", and the app page in a
// real browser, for every example; then a second patient in a second tab,
// and the first tab still on its own patient after a reload.
func TestBrowser(t *testing.T) {
	path := chromium(t)
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			ex := start(t, name, nil)
			tab1 := newBrowser(t, path)

			ctx := tabContext(t, tab1)
			launch(t, ctx, ex.OpenURL, "pat-1")
			checkApp(t, ctx, ex, "Amy Shaw")
			screenshot(t, ctx, name)

			tab2, cancel := chromedp.NewContext(tab1) // a new target: a second tab
			defer cancel()
			ctx2 := tabContext(t, tab2)
			launch(t, ctx2, ex.OpenURL, "pat-2")
			checkApp(t, ctx2, ex, "Daniel Adams")

			if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
				t.Fatalf("reloading the first tab: %v", err)
			}
			checkApp(t, ctx, ex, "Amy Shaw")

			// The page's links carry the launch handle: the JSON of the
			// first tab's patient, opened from the first tab.
			href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("patient-json"), "href"))
			if err != nil || !strings.Contains(href.Value, "launch_handle=") {
				t.Fatalf("patient-json link = %q, %v; want one with the launch handle", href.Value, err)
			}
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("patient-json"))); err != nil {
				t.Fatal(err)
			}
			body := pollText(t, ctx, `"id":"pat-1"`)
			if !strings.Contains(body, `"id":"pat-1"`) {
				t.Errorf("the first tab's patient JSON is not pat-1:\n%s", body)
			}
		})
	}
}

// tabContext bounds the test's actions on one tab.
func tabContext(t *testing.T, tab context.Context) context.Context {
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// launch opens the sandbox EHR page and clicks "Launch app" for patient.
func launch(t *testing.T, ctx context.Context, ehrURL, patient string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(ehrURL),
		chromedp.WaitVisible(chromedp.ID("launch-"+patient)),
		chromedp.Click(chromedp.ID("launch-"+patient)),
		chromedp.WaitVisible(chromedp.ID("patient-banner")),
	)
	if err != nil {
		t.Fatalf("launching %s from the sandbox EHR: %v", patient, err)
	}
}

// checkApp checks that the tab shows the app page for the patient named
// name, with observations, at a URL that carries a launch handle.
func checkApp(t *testing.T, ctx context.Context, ex *app, name string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("patient-name"))); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("patient-name")))
	if err != nil {
		t.Fatal(err)
	}
	if got != name {
		t.Errorf("banner shows %q, want %q", got, name)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#observations tbody tr td.num").length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows == 0 {
		t.Errorf("%s: the observations table has no rows", name)
	}
	// The server sorts them, newest first, and the page lists ten at
	// most: Amy Shaw has twelve.
	dates, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#observations tbody tr td:first-child"), td => td.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(dates) > 10 || !slices.IsSortedFunc(dates, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Errorf("%s: the observations are dated %q, want ten at most, newest first", name, dates)
	}
	if name == "Amy Shaw" && (len(dates) != 10 || dates[0] != "2024-06-13 08:00") {
		t.Errorf("%s: the observations are dated %q, want her ten newest, from 2024-06-13 08:00", name, dates)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, ex.BaseURL+"/fhir/?") || !strings.Contains(loc, "launch_handle=") {
		t.Errorf("app page at %q; want %s/fhir/ with a launch_handle", loc, ex.BaseURL)
	}
}

// pollText waits a little for the page's text, without white space, to
// hold want, and returns it.
func pollText(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	var text string
	for range 50 {
		var err error
		text, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		text = strings.Join(strings.Fields(text), "")
		if err == nil && strings.Contains(text, want) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return text
}

// screenshot saves a PNG of the tab's page to $SMART_ARTIFACTS, or to the
// test's temporary directory, and logs its path.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("SMART_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("app-%s.png", name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the app page: %s", p)
}
