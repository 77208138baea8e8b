package service

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	var logged strings.Builder
	a := NewAdmin("127.0.0.1:0", zerolog.New(&logged))
	var broken error
	a.AddReadiness("bus", func(context.Context) error { return broken })
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.Addr()
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d while ready", code)
	}
	// The reason goes to the log, once per change; the answer is the
	// status only (an error may name a host, a user, a password).
	broken = errors.New("dial clickhouse://ops:s3cret@10.1.2.3:9000: connection refused")
	for range 3 {
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"status":"not ready","checks":{"bus":"failing"}}` {
			t.Errorf("/readyz = %d %q, want 503 with the status of each check and no reason", code, body)
		}
	}
	if n := strings.Count(logged.String(), "connection refused"); n != 1 {
		t.Errorf("the failing check's reason logged %d times over 3 probes, want once: %s", n, logged.String())
	}
	broken = nil
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ok","checks":{"bus":"ok"}}` {
		t.Errorf("/readyz = %d %q once recovered", code, body)
	}
	if !strings.Contains(logged.String(), "ready again") {
		t.Errorf("recovery not logged: %s", logged.String())
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, body without Go metrics", code)
	}
	a.Draining()
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while draining, want 503", code)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestAdminLoopbackByDefault: an admin address that names no host listens
// on loopback, never on every interface.
func TestAdminLoopbackByDefault(t *testing.T) {
	for in, want := range map[string]string{":9101": "127.0.0.1:9101", "9101": "127.0.0.1:9101", "0.0.0.0:9101": "0.0.0.0:9101",
		"10.0.0.7:9101": "10.0.0.7:9101", "[::1]:9101": "[::1]:9101", "": ""} {
		if got := AdminListenAddr(in); got != want {
			t.Errorf("AdminListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
	a := NewAdmin(":0", zerolog.Nop())
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	host, _, err := net.SplitHostPort(a.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Errorf("NewAdmin(\":0\") listens on %s, want 127.0.0.1", a.Addr())
	}
}

func TestAdminShutdownBeforeStart(t *testing.T) {
	if err := NewAdmin("127.0.0.1:0", zerolog.Nop()).Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type recorder struct {
	name  string
	log   *[]string
	fails bool
}

func (r recorder) Start(context.Context) error {
	*r.log = append(*r.log, "start "+r.name)
	if r.fails {
		return errors.New("boom")
	}
	return nil
}

func (r recorder) Shutdown(context.Context) error {
	*r.log = append(*r.log, "stop "+r.name)
	return nil
}

func TestRunStopsInReverseAndOnlyWhatStarted(t *testing.T) {
	var log []string
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, zerolog.Nop(), 0, recorder{"a", &log, false}, recorder{"b", &log, true}, recorder{"c", &log, false})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Run = %v, want the start error", err)
	}
	if got := strings.Join(log, ","); got != "start a,start b,stop a" {
		t.Fatalf("order = %s", got)
	}
}

func TestShutdownAllDrainsAdminFirst(t *testing.T) {
	a := NewAdmin("127.0.0.1:0", zerolog.Nop())
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.Addr()
	var readyDuringStop int
	probe := OnShutdown(func(context.Context) error {
		readyDuringStop, _ = get(t, base+"/readyz")
		return nil
	})
	// The admin server is listed first, so it stops last: /readyz must
	// already say 503 while the other components stop.
	if err := ShutdownAll(context.Background(), a, probe); err != nil {
		t.Fatal(err)
	}
	if readyDuringStop != http.StatusServiceUnavailable {
		t.Fatalf("/readyz answered %d while the service was stopping, want 503", readyDuringStop)
	}
}
