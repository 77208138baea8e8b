package cluster

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/api"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// TestAPIAsItsUser starts the api as the api user of accounts.conf against
// the provisioned streams, as the deployment does: its stream check, its
// own key-value bucket of the views' logins (api_sessions, created at
// start), and a login, a page and a logout through the views, each of
// which reads or writes that bucket. NATS must refuse nothing.
func TestAPIAsItsUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, v, _ := provisionedCluster(t, ctx)
	const token = "cluster-test-investigator-token"
	cfg, err := api.ConfigFromEnv(service.MapEnv(map[string]string{
		"HINSCORE_API_TOKENS":    "ivy=investigator:" + api.HashToken(token),
		"HINSCORE_API_ADDR":      "127.0.0.1:0",
		"HINSCORE_API_AUDIT_LOG": filepath.Join(t.TempDir(), "audit.jsonl"),
		bus.EnvNATSURL:           userURL(c, "api"),
		bus.EnvStreams:           "check",
		bus.EnvStreamReplicas:    "3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	js, closer, err := cfg.NATS.Connect(ctx, "api", 0)
	if err != nil {
		t.Fatalf("the api's stream check as its user: %v", err)
	}
	defer closer.Shutdown(ctx)
	js.Conn().SetErrorHandler(v.handler("api"))
	ch, _ := chtest.Database(t)
	srv, err := api.New(cfg, service.Deps{JetStream: js, ClickHouse: ch, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Metrics: prometheus.NewRegistry(), Clock: service.SystemClock{}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	if err := srv.Start(sctx); err != nil {
		t.Fatalf("the api's start as its user: %v", err)
	}
	defer srv.Shutdown(ctx)
	viewsLogin(t, "http://"+srv.Addr(), token)
	v.check(t)
}

// viewsLogin logs in to the views with token as a browser does, opens a
// page with the session and logs out: afterwards the page sends back to
// the login.
func viewsLogin(t *testing.T, base, token string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	csrfOf := func(page string) string {
		_, rest, _ := strings.Cut(page, `name="csrf" value="`)
		value, _, _ := strings.Cut(rest, `"`)
		return value
	}
	_, page := do(http.MethodGet, "/ui/login", nil)
	if code, body := do(http.MethodPost, "/ui/login", url.Values{"token": {token}, "csrf": {csrfOf(page)}}); code != http.StatusSeeOther {
		t.Fatalf("login: %d %.300s", code, body)
	}
	code, page := do(http.MethodGet, "/ui/offenders", nil)
	if code != http.StatusOK {
		t.Fatalf("a page with the session: %d %.300s", code, page)
	}
	if code, body := do(http.MethodPost, "/ui/logout", url.Values{"csrf": {csrfOf(page)}}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d %.300s", code, body)
	}
	if code, _ := do(http.MethodGet, "/ui/offenders", nil); code != http.StatusSeeOther {
		t.Errorf("a page after logout: %d, want 303 to the login", code)
	}
}
