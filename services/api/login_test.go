package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// cookieOf is the cookie name set by resp (nil when none).
func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// postForm posts form to base+path with the cookies given.
func postForm(t *testing.T, base, path string, form url.Values, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return send(t, req, cookies)
}

// getWith gets base+path with the cookies given.
func getWith(t *testing.T, base, path string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, req, cookies)
}

// send sends req with the cookies, following no redirect.
func send(t *testing.T, req *http.Request, cookies []*http.Cookie) (*http.Response, string) {
	t.Helper()
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login logs in through the form as a browser does and returns the
// session cookie.
func login(t *testing.T, base, token string) *http.Cookie {
	t.Helper()
	resp, _ := getWith(t, base, "/ui/login")
	csrf := cookieOf(resp, loginCSRFCookie)
	if csrf == nil {
		t.Fatal("the login form set no CSRF cookie")
	}
	resp, body := postForm(t, base, "/ui/login", url.Values{"token": {token}, "csrf": {csrf.Value}}, csrf)
	sess := cookieOf(resp, sessionCookie)
	if resp.StatusCode != http.StatusSeeOther || sess == nil {
		t.Fatalf("login: %d, session cookie %v: %.300s", resp.StatusCode, sess, body)
	}
	return sess
}

// TestLoginSession drives the views' login on a plain-HTTP listener with a
// public https URL (as behind a TLS-terminating proxy): both cookies are
// Secure, the session cookie is not the token, the form needs its CSRF
// token, the pages' logout form carries the session's, and after logout
// the same cookie opens nothing.
func TestLoginSession(t *testing.T) {
	conn, _ := chtest.Database(t)
	cfg := testConfig(t)
	cfg.PublicURL = "https://hinscore.example.org"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startServer(t, ctx, cfg, conn, bustest.Streams(t), zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), &manualClock{})
	base := "http://" + srv.Addr()

	resp, page := getWith(t, base, "/ui/login")
	csrf := cookieOf(resp, loginCSRFCookie)
	if csrf == nil || !csrf.Secure || !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || !strings.Contains(page, `name="csrf" value="`+csrf.Value+`"`) {
		t.Fatalf("login form: CSRF cookie %+v, want Secure, HttpOnly, Strict and its value in the form", csrf)
	}
	token := testTokens["investigator"]
	for name, form := range map[string]url.Values{
		"no CSRF field":    {"token": {token}},
		"another token":    {"token": {token}, "csrf": {strings.Repeat("0", 64)}},
		"empty CSRF field": {"token": {token}, "csrf": {""}},
	} {
		resp, _ := postForm(t, base, "/ui/login", form, csrf)
		if resp.StatusCode != http.StatusForbidden || cookieOf(resp, sessionCookie) != nil {
			t.Errorf("login with %s: %d, session cookie %v; want 403 and no session", name, resp.StatusCode, cookieOf(resp, sessionCookie))
		}
	}
	if resp, _ := postForm(t, base, "/ui/login", url.Values{"token": {token}, "csrf": {csrf.Value}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without the CSRF cookie: %d, want 403", resp.StatusCode)
	}

	sess := login(t, base, token)
	if !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/ui/" || strings.Contains(sess.Value, token) {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, Strict, /ui/, not the token", sess)
	}
	resp, page = getWith(t, base, "/ui/offenders", sess)
	sessCSRF := between(page, `<input type="hidden" name="csrf" value="`, `"`)
	if resp.StatusCode != http.StatusOK || len(sessCSRF) != 64 || sessCSRF == csrf.Value {
		t.Fatalf("offenders with the session: %d, logout form CSRF %q", resp.StatusCode, sessCSRF)
	}
	// A logout without the session's CSRF token (a cross-site form) is
	// refused and ends nothing.
	if resp, _ := postForm(t, base, "/ui/logout", url.Values{"csrf": {csrf.Value}}, sess); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := getWith(t, base, "/ui/offenders", sess); resp.StatusCode != http.StatusOK {
		t.Fatalf("session after a refused logout: %d", resp.StatusCode)
	}
	resp, _ = postForm(t, base, "/ui/logout", url.Values{"csrf": {sessCSRF}}, sess)
	if c := cookieOf(resp, sessionCookie); resp.StatusCode != http.StatusSeeOther || c == nil || c.MaxAge >= 0 || !c.Secure {
		t.Fatalf("logout: %d, cookie %+v", resp.StatusCode, c)
	}
	// The cookie replayed after logout opens nothing, here or on another
	// replica sharing the bucket.
	for _, path := range []string{"/ui/offenders", "/ui/chains/00000000-0000-0000-0000-000000000000"} {
		resp, page := getWith(t, base, path, sess)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" || strings.Contains(page, "Offenders ·") {
			t.Errorf("%s with the logged-out cookie: %d to %q, want 303 to /ui/login", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if got := testutil.ToFloat64(srv.metrics.authRefused.WithLabelValues("csrf")); got != 5 {
		t.Errorf("auth_refused_total{reason=csrf} = %g, want 5", got)
	}
}

// TestLoginCookieOverPlainHTTP: without a public https URL, a plain-HTTP
// connection gets a cookie a browser would send over it.
func TestLoginCookieOverPlainHTTP(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startServer(t, ctx, testConfig(t), conn, bustest.Streams(t), zerolog.Nop(), &manualClock{})
	if sess := login(t, "http://"+srv.Addr(), testTokens["analyst"]); sess.Secure {
		t.Errorf("session cookie over plain HTTP without a public https URL is Secure: %+v", sess)
	}
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}

// TestUnknownTokensLimited: unknown bearer tokens and failed logins from
// one address take from one bucket of AuthFailures.Burst (10, one forgiven
// every 5 s); then that
// address gets 429 with Retry-After before its token is looked at (a valid
// one too), while another address is served; a failure is forgiven every
// 1/PerSecond.
func TestUnknownTokensLimited(t *testing.T) {
	conn, _ := chtest.Database(t)
	clock := &manualClock{}
	clock.ms.Store(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixMilli())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.AuthFailures = AuthFailures{PerSecond: 0.2, Burst: 10}
	failureLimit := cfg.AuthFailures.limit()
	srv := startServer(t, ctx, cfg, conn, bustest.Streams(t), zerolog.Nop(), clock)
	h := srv.Handler()
	call := func(from, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/chains?limit=1", nil)
		req.RemoteAddr = from + ":40000"
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range failureLimit.Burst - 2 {
		if rec := call("10.0.0.1", fmt.Sprintf("guess-%d", i)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, rec.Code)
		}
	}
	// Failed logins count in the same bucket (the login form's own CSRF
	// pair, then a wrong token).
	base := "http://" + srv.Addr()
	for range 2 {
		resp, _ := getWith(t, base, "/ui/login")
		c := cookieOf(resp, loginCSRFCookie)
		req := httptest.NewRequest(http.MethodPost, "/ui/login", strings.NewReader(url.Values{"token": {"nope"}, "csrf": {c.Value}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr, req.Host = "10.0.0.1:40001", srv.Addr()
		req.AddCookie(c)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("failed login: %d, want 401", rec.Code)
		}
	}
	for _, token := range []string{"guess-x", testTokens["analyst"]} {
		rec := call("10.0.0.1", token)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "5" {
			t.Errorf("token %.8s… from a spent address: %d, Retry-After %q; want 429, 5", token, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	if rec := call("10.0.0.2", testTokens["analyst"]); rec.Code != http.StatusOK {
		t.Errorf("another address: %d, want 200", rec.Code)
	}
	clock.advance(4900 * time.Millisecond)
	if rec := call("10.0.0.1", testTokens["analyst"]); rec.Code != http.StatusTooManyRequests {
		t.Errorf("before Retry-After: %d, want 429", rec.Code)
	}
	clock.advance(100 * time.Millisecond)
	if rec := call("10.0.0.1", testTokens["analyst"]); rec.Code != http.StatusOK {
		t.Errorf("at Retry-After with a valid token: %d, want 200", rec.Code)
	}
	for reason, want := range map[string]float64{"unknown_token": float64(failureLimit.Burst - 2), "bad_login": 2, "limited": 3} {
		if got := testutil.ToFloat64(srv.metrics.authRefused.WithLabelValues(reason)); got != want {
			t.Errorf("auth_refused_total{reason=%q} = %g, want %g", reason, got, want)
		}
	}
}

// TestGuardBounded: a flood of addresses never grows the table past its
// bound; past it they share one bucket, and addresses whose buckets have
// refilled are forgotten to make room.
func TestGuardBounded(t *testing.T) {
	failureLimit := RateLimit{PerSecond: 0.2, Burst: 10}
	g := newGuard(failureLimit)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range maxGuardedAddrs + 5000 {
		g.fail(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := g.size(); n > maxGuardedAddrs+1 {
		t.Fatalf("%d addresses tracked, bound %d", n, maxGuardedAddrs+1)
	}
	// The 5000 beyond the bound spent the shared bucket: a new address is
	// refused with them.
	if blocked, _ := g.blocked("192.0.2.1", now); !blocked {
		t.Error("a new address past the bound is not limited with the overflow")
	}
	// Once the tracked buckets have refilled they are forgotten, and a new
	// address has its own bucket again.
	later := now.Add(time.Duration(float64(failureLimit.Burst)/failureLimit.PerSecond) * time.Second)
	g.fail("192.0.2.1", later)
	if blocked, _ := g.blocked("192.0.2.1", later); blocked {
		t.Error("one failure of a new address after the refill blocks it")
	}
	if n := g.size(); n > 3 {
		t.Errorf("%d addresses tracked after the refill, want the new one and the overflow", n)
	}
}
