package pipeline

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/syslog"
)

// startForTest starts the pipeline, shut down when the test ends.
func startForTest(ctx context.Context, t *testing.T, opts Options) *Pipeline {
	t.Helper()
	p, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Bounded: a shutdown that never drains fails the test instead of hanging it.
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := p.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p
}

// TestATNAEndToEnd: audit records of both gateways' sides, sent over
// syslog (octet-counted frames over TCP, and a UDP datagram) to the
// composed pipeline, reach ClickHouse as the events their mapping gives,
// every one once (the record sent twice included); a record that is not
// XML reaches dead_letters with the listener's reason.
func TestATNAEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := testOptions(t, []string{"hin1"})
	cfg := atnaingest.DefaultConfig()
	cfg.Listeners = ingest.Listeners{{Network: "hin1", Addr: "127.0.0.1:0"}}
	cfg.UDP = ingest.Listeners{{Network: "hin1", Addr: "127.0.0.1:0"}}
	opts.ATNA = &cfg
	p := startForTest(ctx, t, opts)
	addrs := p.ATNAAddrs()["hin1"]
	if len(addrs) != 2 || !strings.HasPrefix(addrs[1], "udp:") {
		t.Fatalf("ATNA addresses %v, want the stream's and the UDP one", addrs)
	}

	files, err := filepath.Glob("../../../lib/atna/testdata/*.xml")
	if err != nil || len(files) < 5 {
		t.Fatalf("audit records: %v, %v", files, err)
	}
	mapping := opts.ATNA.Mapping()
	var stream []byte
	wantEvents := 0
	var datagram []byte
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := mapping.Map("hin1", body, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		wantEvents += len(evs)
		msg := append([]byte("<85>1 2026-12-07T10:15:02.117Z gw.example.org ATNA - IHE+RFC-3881 - "), body...)
		if i == 0 {
			datagram = msg
			stream = syslog.AppendFrame(stream, msg) // the same record again, over the stream: stored once
			continue
		}
		stream = syslog.AppendFrame(stream, msg)
	}
	stream = syslog.AppendFrame(stream, []byte("<85>1 - gw.example.org ATNA - - - not an audit record"))
	nc, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(stream); err != nil {
		t.Fatal(err)
	}
	uc, err := net.Dial("udp", strings.TrimPrefix(addrs[1], "udp:"))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write(datagram); err != nil {
		t.Fatal(err)
	}

	conn, _ := p.ClickHouse()
	deadline := time.Now().Add(time.Minute)
	for {
		var events, dls uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE network = 'hin1' AND format = 'atna'").Scan(&events); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT count() FROM dead_letters FINAL WHERE stage = 'atna-ingest' AND network = 'hin1' AND format = 'atna' AND startsWith(reason, 'xml: ')").Scan(&dls); err != nil {
			t.Fatal(err)
		}
		if events == uint64(wantEvents) && dls == 1 {
			break
		}
		if events > uint64(wantEvents) || time.Now().After(deadline) {
			t.Fatalf("ClickHouse holds %d events and %d dead letters of the listener, want %d (%d records) and 1", events, dls, wantEvents, len(files))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
