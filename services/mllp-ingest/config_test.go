package mllpingest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service/servicetest"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/hinscore/hinscore/services/lib/service"
)

func TestConfigFromEnv(t *testing.T) {
	got, err := ConfigFromEnv(servicetest.ConfigFile(t, "full.env"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listeners:    []Listener{{Network: "default", Addr: "127.0.0.1:2575"}, {Network: "netb", Addr: "0.0.0.0:2576"}},
		Partitioning: bus.Partitioning{PartitionCount: 8},
		PatientTokens: service.PatientTokens{
			PatientKey:   []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
			PatientKeyID: "2026-03",
		},
		// Not in full.env: the defaults of the settings every service shares.
		NATS:                DefaultConfig().NATS,
		Process:             DefaultConfig().Process,
		MaxFrameBytes:       2048,
		IdleTimeout:         90 * time.Second,
		MaxConns:            10,
		MaxInFlight:         32,
		MaxBatch:            500,
		MaxConnsPerListener: 8,
		MaxConnsPerRemote:   4,
		ReadTimeout:         10 * time.Second,
		MinRate:             512,
		TLSCert:             "/etc/hinscore/mllp.crt",
		TLSKey:              "/etc/hinscore/mllp.key",
		TLSClientCA:         "/etc/hinscore/peers-ca.pem",
		OrgDirectory:        "/etc/hinscore/orgs.csv",
	}
	// The keys: the first seals, the older one still opens.
	older := seal.MustParseRawKeys("2025-12:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100")
	if got.RawKeys == nil || got.RawKeys.ID() != "2026-03" {
		t.Fatalf("raw keys %v, want 2026-03 first", got.RawKeys)
	}
	if plain, err := got.RawKeys.Open("e", older.Seal("e", []byte("MSH|"))); err != nil || string(plain) != "MSH|" {
		t.Errorf("the older key does not open: %v", err)
	}
	got.RawKeys = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config\n got %+v\nwant %+v", got, want)
	}
	def, err := ConfigFromEnv(service.MapEnv(nil))
	if err != nil || !def.RawKeys.IsDev() {
		t.Fatalf("defaults: %+v, %v", def, err)
	}
	wantDef := DefaultConfig()
	def.RawKeys, wantDef.RawKeys = nil, nil
	if !reflect.DeepEqual(def, wantDef) || def.Listeners[0] != (Listener{Network: "default", Addr: "127.0.0.1:2575"}) {
		t.Errorf("defaults: %+v", def)
	}
}

func TestConfigErrorsNameEveryVariable(t *testing.T) {
	_, err := ConfigFromEnv(servicetest.ConfigFile(t, "bad.env"))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, name := range []string{"HINSCORE_MLLP_LISTENERS", "HINSCORE_PARTITIONS", "HINSCORE_PATIENT_KEY:", "HINSCORE_RAW_KEYS", "HINSCORE_MLLP_IDLE_TIMEOUT", "HINSCORE_MLLP_MAX_INFLIGHT",
		"HINSCORE_MLLP_READ_TIMEOUT", "HINSCORE_MLLP_MIN_RATE", "HINSCORE_MLLP_TLS_CERT", "HINSCORE_MLLP_MAX_BATCH", "HINSCORE_MLLP_MAX_CONNS_PER_REMOTE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestParseListeners(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"a=127.0.0.1:1", true},
		{"a=127.0.0.1:1,b=[::1]:2", true},
		{"a=127.0.0.1:1,a=127.0.0.1:2", false},
		{"127.0.0.1:1", false},
		{"a.b=127.0.0.1:1", false},
		{"a=nohost", false},
		{" , ", false},
	}
	for _, tt := range tests {
		if _, err := ParseListeners(tt.in); (err == nil) != tt.ok {
			t.Errorf("ParseListeners(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}
