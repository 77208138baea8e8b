package fhiringest

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/lib/service/servicetest"
)

// TestTokenBoundToNetwork: netb's valid token cannot write neta's traffic,
// neither FHIR resources nor SOAP copies: each request is refused (403),
// counted as forbidden and logged naming both networks; nothing is stored.
// neta's own token writes.
func TestTokenBoundToNetwork(t *testing.T) {
	h := newHarness(t, nil)
	logs := &servicetest.Buffer{}
	reg := prometheus.NewRegistry()
	srv, err := New(h.srv.cfg, service.Deps{JetStream: h.js, Log: zerolog.New(logs), Metrics: reg, Clock: fixedClock{testNow}})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Start(t, srv)
	hb := *h
	hb.srv, hb.base = srv, "http://"+srv.Addr()
	task := example(t, "task-requested.json")
	for _, p := range []post{
		{path: "/fhir/neta/Task", token: tokenB, body: task},
		{path: "/fhir/neta/", token: tokenB, body: task},
		{path: "/soap/neta", token: tokenB, contentType: "text/xml", body: []byte("<x/>")},
	} {
		if a := hb.do(p); a.status != 403 {
			t.Errorf("%s with netb's token: %d, want 403", p.path, a.status)
		}
	}
	if n := testutil.ToFloat64(srv.m.rejected.WithLabelValues("-", reasonForbidden)); n != 3 {
		t.Errorf("forbidden refusals counted %v, want 3", n)
	}
	if got := strings.Count(logs.String(), `"token_network":"netb"`); got != 3 || !strings.Contains(logs.String(), `"network":"neta"`) {
		t.Errorf("%d refusals logged naming netb, want 3: %s", got, logs)
	}
	if evs := hb.events(); len(evs) != 0 {
		t.Fatalf("%d events stored from another network's token", len(evs))
	}
	if a := hb.do(post{path: "/fhir/neta/Task", token: tokenA, body: task}); a.status != 201 {
		t.Errorf("neta's own token: %d", a.status)
	}
}
