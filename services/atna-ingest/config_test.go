package atnaingest

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/lib/service/servicetest"
)

func TestConfigFromEnv(t *testing.T) {
	got, err := ConfigFromEnv(servicetest.ConfigFile(t, "full.env"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listeners:    ingest.Listeners{{Network: "default", Addr: "127.0.0.1:6514"}, {Network: "netb", Addr: "0.0.0.0:6515"}},
		UDP:          ingest.Listeners{{Network: "netb", Addr: "0.0.0.0:5514"}},
		Partitioning: bus.Partitioning{PartitionCount: 8},
		PatientTokens: service.PatientTokens{
			PatientKey:   []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
			PatientKeyID: "2026-03",
		},
		// Not in full.env: the defaults of the settings every service shares.
		Keys:                DefaultConfig().Keys,
		NATS:                DefaultConfig().NATS,
		Process:             DefaultConfig().Process,
		MaxFrameBytes:       65536,
		IdleTimeout:         90 * time.Second,
		MaxConns:            10,
		MaxConnsPerListener: 8,
		MaxConnsPerRemote:   4,
		MaxInFlight:         32,
		ReadTimeout:         10 * time.Second,
		MinRate:             512,
		TLSCert:             "/etc/hinscore/atna.crt",
		TLSKey:              "/etc/hinscore/atna.key",
		TLSClientCA:         "/etc/hinscore/gateways-ca.pem",
	}
	if got.RawKeys.ID() != want.RawKeys.ID() {
		t.Errorf("raw keys %s, want the default", got.RawKeys.ID())
	}
	got.RawKeys, want.RawKeys = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config\n got %+v\nwant %+v", got, want)
	}
	def, err := ConfigFromEnv(service.MapEnv(nil))
	if err != nil || len(def.UDP) != 0 || def.Listeners[0] != (ingest.Listener{Network: "default", Addr: "127.0.0.1:6514"}) ||
		def.AdminAddr != "127.0.0.1:9109" {
		t.Errorf("defaults: %+v, %v", def, err)
	}
}

func TestConfigErrorsNameEveryVariable(t *testing.T) {
	_, err := ConfigFromEnv(servicetest.ConfigFile(t, "bad.env"))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, name := range []string{"HINSCORE_ATNA_LISTENERS", "HINSCORE_ATNA_UDP", "HINSCORE_PARTITIONS", "HINSCORE_ATNA_MAX_FRAME",
		"HINSCORE_ATNA_IDLE_TIMEOUT", "HINSCORE_ATNA_MAX_INFLIGHT", "HINSCORE_ATNA_READ_TIMEOUT", "HINSCORE_ATNA_MIN_RATE", "HINSCORE_ATNA_TLS_CERT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// TestStandaloneChecksThePartitionCount: composed as bin/atna-ingest is
// (service.Main), the listener refuses to start against EVENTS that
// records another partition count, and starts with the same one.
func TestStandaloneChecksThePartitionCount(t *testing.T) {
	bustest.CheckPartitionCount(t, map[string]string{"HINSCORE_ATNA_LISTENERS": "neta=127.0.0.1:0", service.EnvEnvironment: service.Development}, func(ctx context.Context, env *service.Env) error {
		return service.Serve(ctx, "atna-ingest", env, io.Discard, ConfigFromEnv, New)
	})
}
