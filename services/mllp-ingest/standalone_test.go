package mllpingest

import (
	"context"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// TestStandaloneChecksThePartitionCount: composed as bin/mllp-ingest is
// (service.Main), the ingest refuses to start against EVENTS that records
// another partition count, and starts with the same one.
func TestStandaloneChecksThePartitionCount(t *testing.T) {
	bustest.CheckPartitionCount(t, map[string]string{"HINSCORE_MLLP_LISTENERS": "neta=127.0.0.1:0", service.EnvEnvironment: service.Development}, func(ctx context.Context, env *service.Env) error {
		return service.Serve(ctx, "mllp-ingest", env, io.Discard, ConfigFromEnv, New)
	})
}

// TestProductionRefusals: composed as bin/mllp-ingest is, with
// HINSCORE_ENV unset (production), the ingest refuses to start with the
// public development keys or a listener without client certificates bound
// to its network, naming each variable; with keys of its own and every
// listener's own client CA it starts.
func TestProductionRefusals(t *testing.T) {
	opts := bus.DefaultStreamOptions()
	url, _ := bustest.Start(t, &opts)
	pkiA, pkiB := ingesttest.NewPKI(t, "neta CA"), ingesttest.NewPKI(t, "netb CA")
	base := map[string]string{bus.EnvNATSURL: url, service.EnvAdminAddr: "127.0.0.1:0",
		"HINSCORE_MLLP_LISTENERS": "neta=127.0.0.1:0,netb=127.0.0.1:0"}
	keys := map[string]string{"HINSCORE_PATIENT_KEY": "a patient key of this test's own", "HINSCORE_RAW_KEYS": "t1:" + strings.Repeat("ab", 32)}
	tlsOn := map[string]string{"HINSCORE_MLLP_TLS_CERT": pkiA.CertFile, "HINSCORE_MLLP_TLS_KEY": pkiA.KeyFile}
	for _, c := range []struct {
		name string
		env  []map[string]string
		want []string // "" : starts
	}{
		{"dev keys, plain TCP", nil, []string{"HINSCORE_PATIENT_KEY", "HINSCORE_RAW_KEYS", "HINSCORE_MLLP_LISTENERS: TLS is off"}},
		{"plain TCP", []map[string]string{keys}, []string{"HINSCORE_MLLP_LISTENERS: TLS is off"}},
		{"one CA for both", []map[string]string{keys, tlsOn, {"HINSCORE_MLLP_TLS_CLIENT_CA": pkiA.CAFile}},
			[]string{"network neta: its client CA is shared", "network netb: its client CA is shared"}},
		{"a CA each", []map[string]string{keys, tlsOn, {"HINSCORE_MLLP_TLS_CLIENT_CAS": "neta=" + pkiA.CAFile + ",netb=" + pkiB.CAFile}}, nil},
		{"one CA and the URI", []map[string]string{keys, tlsOn, {"HINSCORE_MLLP_TLS_CLIENT_CA": pkiA.CAFile,
			"HINSCORE_MLLP_TLS_CLIENT_URI": "urn:hinscore:network:{network}"}}, nil},
		{"development says so", []map[string]string{{service.EnvEnvironment: service.Development}}, nil},
		{"a mistyped environment", []map[string]string{keys, {service.EnvEnvironment: "prod"}}, []string{"HINSCORE_ENV"}},
	} {
		env := maps.Clone(base)
		for _, m := range c.env {
			maps.Copy(env, m)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := service.Serve(ctx, "mllp-ingest", service.MapEnv(env), io.Discard, ConfigFromEnv, New)
		cancel()
		if c.want == nil && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.want != nil && (err == nil || !strings.Contains(err.Error(), "production") && c.name != "a mistyped environment") {
			t.Errorf("%s: started (%v), want a refusal", c.name, err)
		}
		for _, w := range c.want {
			if err != nil && !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want it to name %q", c.name, err, w)
			}
		}
	}
}
