package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/sessiontest"
	"github.com/lanmsg/lanmsg/session/web"
)

// startWebServer starts a server with the chat page on 127.0.0.1.
func startWebServer(t *testing.T, cfg session.Config) (*session.Server, string, *sessiontest.SyncBuffer) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	page, err := web.New(&log, web.Options{Room: defaultRoom})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Web = page
	out := &sessiontest.SyncBuffer{}
	srv, err := session.NewServer(cfg, out, session.Text, &log)
	if err != nil {
		t.Fatal(err)
	}
	page.Start(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		<-done
		_ = page.Close()
	})
	return srv, ln.Addr().String(), out
}

// chromium returns the path of Debian's chromium, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("no chromium on PATH: install Debian's chromium (.ci/run does) to run the browser tests")
	return ""
}

// browser starts a headless Chromium that can reach loopback only: every
// host name resolves to nothing and every other address goes to a proxy
// on a closed port. Each returned tab shares the browser.
func browser(t *testing.T) (newTab func() context.Context, dialogs *atomic.Int32) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-features", "OptimizationHints,MediaRouter,Translate,DialMediaRouteProvider"),
		chromedp.WindowSize(390, 844),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	dialogs = &atomic.Int32{}
	first := true
	newTab = func() context.Context {
		ctx := bctx
		if !first {
			var cancel context.CancelFunc
			// Its own profile (storage, cookies): another person.
			ctx, cancel = chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
			t.Cleanup(cancel)
		}
		first = false
		// Any dialog (alert(1) run by markup in a message) is counted and
		// dismissed.
		opened := chromedp.Events(ctx, page.JavascriptDialogOpening)
		go func() {
			for _, err := range opened {
				if err != nil {
					return
				}
				dialogs.Add(1)
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
			}
		}()
		return ctx
	}
	return newTab, dialogs
}

// runTab runs browser actions with a deadline.
func runTab(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if _, err := evalTab[chromedp.Void](t, ctx, chromedp.Steps(actions...)); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("%s: %v\npage:\n%s", what, err, html)
	}
}

// evalTab runs one action with a deadline and returns its value.
func evalTab[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) (T, error) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(tctx, a)
}

// value evaluates JavaScript, failing the test on an error.
func value[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := evalTab(t, ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// poll waits until the JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))(ctx, tg)
		return chromedp.Void{}, err
	}
}

// jsString quotes s for JavaScript.
func jsString(s string) string { return fmt.Sprintf("%q", s) }

// waitLine waits until a line of the page's log has text among its
// message text (the part after "name: ").
func waitLine(text string) chromedp.Action[chromedp.Void] {
	return poll(`[...document.querySelectorAll("#log li")].some(li => li.textContent.includes(` + jsString(text) + `))`)
}

// joinPage opens the page and joins with name, pressing Enter in field.
func joinPage(t *testing.T, ctx context.Context, url, name, field string) {
	t.Helper()
	runTab(t, ctx, name+" joins",
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name="`+field+`"]`), "\r"),
		poll(`document.getElementById("status").textContent.startsWith("You are ")`),
	)
}

func TestWebPageChat(t *testing.T) {
	newTab, dialogs := browser(t)
	srv, addr, out := startWebServer(t, session.Config{})
	url := "http://" + addr + "/"

	ann, ben := newTab(), newTab()
	joinPage(t, ann, url, "ann", "name")
	joinPage(t, ben, url, "ben", "room") // Enter in the room field joins too
	carl := startChat(t, refusingLAN{}, "--server", addr, "--as", "carl")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("carl's screen:\n%s\nthe server's output:\n%s", carl.out.String(), out.String())
		}
	})
	sessiontest.WaitFor(t, 10*time.Second, "carl to join", func() bool { return strings.Contains(carl.out.String(), "* here: ") })
	here := carl.out.String()
	if !strings.Contains(here, "ann (web)") || !strings.Contains(here, "ben (web)") {
		t.Fatalf("carl does not see the page's participants marked as web:\n%s", here)
	}
	runTab(t, ann, "ann sees carl join", waitLine("carl joined"))

	// Page to page and page to chat.
	runTab(t, ann, "ann sends", chromedp.SendKeys(chromedp.CSS(`input[name="text"]`), "hello from ann\r"))
	runTab(t, ben, "ben gets ann's message", waitLine("hello from ann"))
	sessiontest.WaitFor(t, 10*time.Second, "carl to get ann's message", func() bool { return strings.Contains(carl.out.String(), "[ann (web)] hello from ann\n") })

	// Chat to the pages.
	carl.say(t, "hi from carl")
	runTab(t, ann, "ann gets carl's message", waitLine("hi from carl"))
	runTab(t, ben, "ben gets carl's message", waitLine("hi from carl"))

	// Markup is text.
	const xss = `<img src=x onerror=alert(1)> and <script>alert(2)</script>`
	runTab(t, ben, "ben sends markup", chromedp.SendKeys(chromedp.CSS(`input[name="text"]`), xss+"\r"))
	runTab(t, ann, "ann gets the markup", waitLine(xss))
	sessiontest.WaitFor(t, 10*time.Second, "carl to get the markup", func() bool { return strings.Contains(carl.out.String(), "[ben (web)] "+xss+"\n") })
	elems := value[int](t, ann, `document.querySelectorAll("#log img, #log script, #log *[onerror]").length`)
	last := value[string](t, ann, `document.querySelector("#log li:last-child").textContent`)
	if elems != 0 || !strings.HasSuffix(last, "ben (web): "+xss) {
		t.Errorf("the markup became elements (%d) or its text changed: %q", elems, last)
	}

	// A phone-sized screen shows the input and the last message.
	runTab(t, ann, "a phone-sized viewport", chromedp.EmulateViewport(390, 844))
	inView := value[bool](t, ann, `(() => {
			const visible = (el) => {
				const r = el.getBoundingClientRect();
				if (r.width === 0 || r.height === 0 || r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return false;
				const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
				return hit === el || el.contains(hit);
			};
			return innerWidth === 390 && innerHeight === 844 &&
				visible(document.querySelector('input[name="text"]')) &&
				visible(document.querySelector("#log li:last-child"));
		})()`)
	shot, err := evalTab(t, ann, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if !inView {
		t.Errorf("at 390x844 the text input or the last message is not in view")
	}
	if len(shot) < 8 || string(shot[1:4]) != "PNG" {
		t.Errorf("the screenshot is not a PNG (%d bytes)", len(shot))
	}
	dst := filepath.Join(t.TempDir(), "page.png")
	if p := os.Getenv("LANMSG_SCREENSHOT"); p != "" {
		dst = p // to refresh the README's picture
	}
	if err := os.WriteFile(dst, shot, 0o644); err != nil {
		t.Fatal(err)
	}

	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
	// The server printed the page's messages like any other.
	for _, m := range []string{" : hello from ann\n", " : " + xss + "\n"} {
		sessiontest.WaitFor(t, 10*time.Second, fmt.Sprintf("%q in the server's output", m), func() bool { return strings.Contains(out.String(), m) })
	}
	webSessions := 0
	for _, s := range srv.Sessions() {
		if s.Web {
			webSessions++
		}
	}
	if webSessions != 2 {
		t.Errorf("%d web sessions, want 2", webSessions)
	}
	carl.in.Close()
	carl.wait(t)
}

// TestWebCrossOriginRefused loads a page from another origin (another
// port, with no CSP of its own) that opens the chat page's WebSocket: the
// server must refuse it, while the same page's WebSocket from its own
// origin opens.
func TestWebCrossOriginRefused(t *testing.T) {
	newTab, _ := browser(t)
	srv, addr, _ := startWebServer(t, session.Config{})
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>other site</title>`))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = evil.Serve(ln) }()
	t.Cleanup(func() { _ = evil.Close() })

	open := `new Promise((resolve) => {
		const ws = new WebSocket("ws://` + addr + `/ws");
		ws.onopen = () => { resolve("open"); ws.close(); };
		ws.onerror = () => resolve("refused");
	})`
	tab := newTab()
	runTab(t, tab, "the other site", chromedp.Navigate("http://"+ln.Addr().String()+"/"))
	got := value[string](t, tab, open, chromedp.EvalAwaitPromise)
	if got != "refused" {
		t.Errorf("cross-origin WebSocket: %s, want refused", got)
	}
	for _, s := range srv.Sessions() {
		if s.Web {
			t.Errorf("a web session was opened from another origin: %+v", s)
		}
	}
	// The same script on the page's own origin opens (so the refusal
	// above is the origin check's).
	runTab(t, tab, "the page", chromedp.Navigate("http://"+addr+"/"))
	got = value[string](t, tab, open, chromedp.EvalAwaitPromise)
	if got != "open" {
		t.Errorf("same-origin WebSocket: %s, want open", got)
	}
}
