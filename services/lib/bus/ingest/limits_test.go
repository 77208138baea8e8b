package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service"
)

// TestLimitsCheck: each bad limit is named by its variable under the
// ingest's prefix; good limits pass; TLS off gives no configuration.
func TestLimitsCheck(t *testing.T) {
	good := Limits{Prefix: "HINSCORE_X", MaxFrameBytes: 1024, IdleTimeout: time.Minute, MaxConns: 1, MaxConnsPerListener: 1, MaxConnsPerRemote: 1, MaxInFlight: 1,
		ReadTimeout: time.Second, MinRate: 1}
	var ps service.Problems
	good.Check(&ps)
	if err := ps.Err(); err != nil {
		t.Fatalf("good limits: %v", err)
	}
	if tc, err := good.TLS(); tc != nil || err != nil {
		t.Errorf("TLS without a certificate: %v, %v", tc, err)
	}
	bad := Limits{Prefix: "HINSCORE_X", MaxFrameBytes: 100, MaxInFlight: 70000, TLSKey: "k.pem", TLSClientCA: "ca.pem"}
	ps = service.Problems{}
	bad.Check(&ps)
	err := ps.Err()
	for _, name := range []string{"HINSCORE_X_MAX_FRAME", "HINSCORE_X_IDLE_TIMEOUT", "HINSCORE_X_MAX_CONNS", "HINSCORE_X_MAX_CONNS_PER_LISTENER", "HINSCORE_X_MAX_CONNS_PER_REMOTE", "HINSCORE_X_MAX_INFLIGHT",
		"HINSCORE_X_READ_TIMEOUT", "HINSCORE_X_MIN_RATE", "HINSCORE_X_TLS_CERT", "HINSCORE_X_TLS_CLIENT_CA"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if _, err := (Limits{Prefix: "HINSCORE_X", TLSCert: "missing.pem", TLSKey: "missing.key"}).TLS(); err == nil || !strings.Contains(err.Error(), "HINSCORE_X_TLS_CERT/KEY") {
		t.Errorf("missing files: %v", err)
	}
}

func TestParseListeners(t *testing.T) {
	ls, err := ParseListeners(" a=127.0.0.1:1, b=[::1]:2 ")
	if err != nil || len(ls) != 2 || ls[1] != (Listener{Network: "b", Addr: "[::1]:2"}) {
		t.Fatalf("%v, %v", ls, err)
	}
	for _, in := range []string{"", "a", "a=nowhere", "a=127.0.0.1:1,a=127.0.0.1:2", "no net=127.0.0.1:1"} {
		if _, err := ParseListeners(in); err == nil {
			t.Errorf("ParseListeners(%q) accepted", in)
		}
	}
}

func TestNetworkFiles(t *testing.T) {
	var m NetworkFiles
	if err := m.UnmarshalText([]byte(" neta=/etc/a.pem, netb=/etc/b.pem ,")); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["neta"] != "/etc/a.pem" || m["netb"] != "/etc/b.pem" {
		t.Errorf("parsed %v", m)
	}
	for _, bad := range []string{"neta", "neta=", "ne ta=/x", "neta=/a,neta=/b"} {
		if err := m.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	var set *TLSSet
	if set.For("neta") != nil || set.Mutual("neta") {
		t.Error("a nil set is plain TCP")
	}
	var ps service.Problems
	Limits{Prefix: "P", MaxFrameBytes: 4096, IdleTimeout: 1, MaxConns: 1, MaxInFlight: 1, ReadTimeout: 1, MinRate: 1,
		TLSClientCAs: NetworkFiles{"neta": "/a.pem"}}.Check(&ps)
	if ps.Err() == nil || !strings.Contains(ps.Err().Error(), "P_TLS_CLIENT_CAS") {
		t.Errorf("client CAs without a certificate: %v", ps.Err())
	}
}
