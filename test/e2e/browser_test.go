package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds the system Chromium (Debian's chromium package, which .ci/run installs).
// In CI a missing browser fails the test; elsewhere the test is skipped.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, candidate := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(candidate); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must run the browser test (.ci/run installs Debian's chromium package)")
	}
	t.Skip("chromium is not installed: skipping the browser test (apt-get install chromium to run it)")
	return ""
}

// browserIssues collects what the page must never do: throw, log an error (a refused
// Content-Security-Policy directive is one), or reach another origin.
type browserIssues struct {
	mu     sync.Mutex
	origin string
	list   []string
}

func (b *browserIssues) listen(ev any) {
	var issue string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		issue = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			issue += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, arg := range ev.Args {
				parts = append(parts, fmt.Sprint(arg.Value, arg.Description))
			}
			issue = "console.error: " + strings.Join(parts, " ")
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError || strings.Contains(ev.Entry.Text, "Content Security Policy") {
			issue = fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		u := ev.Request.URL
		if !strings.HasPrefix(u, b.origin+"/") && !strings.HasPrefix(u, "data:") && u != "about:blank" {
			issue = "request to another origin: " + u
		}
	}
	if issue != "" {
		b.mu.Lock()
		b.list = append(b.list, issue)
		b.mu.Unlock()
	}
}

func (b *browserIssues) get() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.list)
}

// TestBrowserDocsPage opens /docs in headless Chromium: every operation of the document is
// listed, the Authorize button takes a bearer token, and "Try it out" on GET /users/me runs
// the request from the page and shows the caller's account. The page must work offline and
// under its Content-Security-Policy: no exception, no console error, no CSP report and no
// request to another origin.
func TestBrowserDocsPage(t *testing.T) {
	browser := chromiumPath(t)
	s := startServer(t, backends()[0].env(t))
	sp := mustSpec(t, s)
	acct := s.signup(uniqueEmail("browser"))

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox, // the CI container runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers often have a tiny /dev/shm
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1600),
	)
	defer cancelAlloc()
	issues := &browserIssues{origin: s.base}
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(issues.listen))
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tabCtx, 30*time.Second)
	defer cancel()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nbrowser issues: %v\nserver log:\n%s", what, err, issues.get(), s.stderr.String())
		}
	}

	// Every operation of the document is on the page.
	var want []string
	for path, item := range sp.doc.Paths.Map() {
		for method := range item.Operations() {
			want = append(want, method+" "+path)
		}
	}
	slices.Sort(want)
	step("open /docs",
		chromedp.Navigate(s.base+"/docs"),
		chromedp.Poll[chromedp.Void](fmt.Sprintf("document.querySelectorAll('.opblock').length >= %d", len(want))),
	)
	listed, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('.opblock')).map(op =>
		op.querySelector('.opblock-summary-method').textContent.trim().toUpperCase() + ' ' +
		op.querySelector('.opblock-summary-path').getAttribute('data-path'))`))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Fatalf("operations on the page:\n%v\nin the document:\n%v", listed, want)
	}

	// Authorize with the access token.
	step("authorize",
		// The page's own button (the modal's submit button is "authorize" too, but not "unlocked").
		chromedp.Click(chromedp.CSS("button.btn.authorize.unlocked")),
		chromedp.WaitVisible(chromedp.CSS(".modal-ux input#auth-bearer-value")),
		chromedp.Focus(chromedp.CSS(".modal-ux input#auth-bearer-value")),
		// One input event for the whole token: SendKeys would type it key by key.
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: acct.Access})
			return err
		}),
		chromedp.Click(chromedp.CSS(`.modal-ux button[type="submit"].authorize`)),
		chromedp.WaitVisible(chromedp.CSS(`.modal-ux button[aria-label="Remove authorization"]`)),
		chromedp.Click(chromedp.CSS(".modal-ux button.btn-done")),
		chromedp.WaitNotPresent(chromedp.CSS(".modal-ux")),
		chromedp.WaitVisible(chromedp.CSS("button.btn.authorize.locked")),
	)

	// Run GET /api/v1/users/me from the page.
	const op = "#operations-users-getMe"
	step("try GET /api/v1/users/me",
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.WaitVisible(chromedp.CSS(op+" .try-out__btn")),
		chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
		chromedp.WaitVisible(chromedp.CSS(op+" button.execute")),
		chromedp.Click(chromedp.CSS(op+" button.execute")),
		chromedp.WaitVisible(chromedp.CSS(op+" .live-responses-table .response-col_status")),
	)
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(op+" .live-responses-table .response .response-col_status")))
	if err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(op+" .live-responses-table .response .response-col_description")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(status) != "200" || !strings.Contains(body, acct.Email) {
		t.Fatalf("the page shows status %q and body %q; want 200 with %s", status, body, acct.Email)
	}

	// Upload an image from the page: the multipart operation offers a file input.
	const up = "#operations-images-uploadImages"
	file := filepath.Join(t.TempDir(), "from-the-page.png")
	if err := os.WriteFile(file, pngFile(t, 32, 24), 0o600); err != nil {
		t.Fatal(err)
	}
	step("try POST /api/v1/images with a file",
		chromedp.Click(chromedp.CSS(up+" .opblock-summary-control")),
		chromedp.WaitVisible(chromedp.CSS(up+" .try-out__btn")),
		chromedp.Click(chromedp.CSS(up+" .try-out__btn")),
		chromedp.WaitVisible(chromedp.CSS(up+" button.execute")),
	)
	// The file field is an array (one or more files): add one item when the page starts
	// with none.
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+up+` input[type=file]').length`)); err == nil && n == 0 {
		step("add a file item", chromedp.Click(chromedp.CSS(up+" .json-schema-form-item-add")))
	}
	step("choose the file and execute",
		chromedp.WaitVisible(chromedp.CSS(up+" input[type=file]")),
		chromedp.SetUploadFiles(chromedp.CSS(up+" input[type=file]"), []string{file}),
		chromedp.Click(chromedp.CSS(up+" button.execute")),
		chromedp.WaitVisible(chromedp.CSS(up+" .live-responses-table .response-col_status")),
	)
	status, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(up+" .live-responses-table .response .response-col_status")))
	if err != nil {
		t.Fatal(err)
	}
	body, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(up+" .live-responses-table .response .response-col_description")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(status) != "201" || !strings.Contains(body, "from-the-page.png") {
		t.Fatalf("uploading from the page shows status %q and body %q; want 201 naming the file", status, body)
	}

	if got := issues.get(); len(got) > 0 {
		t.Fatalf("the page misbehaved:\n%s", strings.Join(got, "\n"))
	}
}
