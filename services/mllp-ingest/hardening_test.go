package mllpingest

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/domain/ids"

	"github.com/rs/zerolog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
	"github.com/hinscore/hinscore/services/lib/service"
)

// TestEveryPatternGetsItsAck sends every message of the mapping samples
// (each pattern of DOMAIN.md's HL7 table) over MLLP.
func TestEveryPatternGetsItsAck(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	files, _ := filepath.Glob("../lib/hl7v2/toevent/testdata/samples/*.hl7")
	if len(files) == 0 {
		t.Fatal("no samples")
	}
	stored := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := hl7v2.SplitMessages(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range msgs {
			req, err := hl7v2.ParseTolerant(raw) // the samples' defective messages too
			if err != nil {
				t.Fatal(err)
			}
			want, send := req.AckPolicy().Reply(hl7v2.CodeAA)
			if !send {
				continue
			}
			c.send(string(raw))
			r := c.recv()
			stored++
			name := file + " " + req.Get("MSH-10")
			if r.Get("MSA-1") != want || r.Get("MSA-2") != req.Get("MSH-10") {
				t.Errorf("%s: MSA %s|%s, want %s|%s", name, r.Get("MSA-1"), r.Get("MSA-2"), want, req.Get("MSH-10"))
			}
			wantType := "ACK"
			if req.Get("MSH-9.1") == "QBP" && want == hl7v2.CodeAA {
				wantType = "RSP"
			}
			if r.Get("MSH-9.1") != wantType || r.Get("MSH-5") != req.Get("MSH-3") || r.Get("MSH-6") != req.Get("MSH-4") {
				t.Errorf("%s: reply header %q", name, r.SegmentBytes(0))
			}
		}
	}
	if n := len(streamMsgs(t, h.js, bus.StreamEvents)); n != stored {
		t.Errorf("EVENTS holds %d, want %d", n, stored)
	}
}

func TestEnhancedModeAcks(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	adt := func(id, msh15 string) string {
		return "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08|" + id + "|P|2.5|||" + msh15 + "|AL\rPID|1||MRN1^^^HOSP_A\r"
	}
	// NE and ER-on-success get no reply: the next reply answers E3. E5
	// does not parse (a bad segment name), so its MSH-15 is not read: it
	// is answered in original mode, AE.
	c.send(adt("E1", "NE"), adt("E2", "ER"), adt("E3", "AL"), adt("E4", "SU"), strings.Replace(adt("E5", "ER"), "PID|", "P!D|", 1))
	for _, want := range [][2]string{{"CA", "E3"}, {"CA", "E4"}, {"AE", "E5"}} {
		r := c.recv()
		if r.Get("MSA-1") != want[0] || r.Get("MSA-2") != want[1] {
			t.Errorf("MSA %s|%s, want %s|%s", r.Get("MSA-1"), r.Get("MSA-2"), want[0], want[1])
		}
	}
	if n := len(streamMsgs(t, h.js, bus.StreamEvents)); n != 4 {
		t.Errorf("EVENTS holds %d, want 4 (every good message, acknowledged or not)", n)
	}
}

func TestBatchOverMLLP(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	data, err := os.ReadFile("../lib/hl7v2/testdata/batch/two_batches.hl7")
	if err != nil {
		t.Fatal(err)
	}
	// Beside the good messages, one that cannot be read (a bad segment
	// name) and two with defects that leave them identifiable (an
	// unreadable MSH-7, an empty MSH-10): each stands on its own.
	bad := "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08|M9|P|2.5\rP!D|1\r"
	flawed := "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|xx||ADT^A08|M8|P|2.5\r" + "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08||P|2.5\r"
	c.send(strings.Replace(string(data), "BTS|1", bad+flawed+"BTS|4", 1))
	_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	frame, err := c.r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	f, err := hl7v2.SplitBatches(frame)
	if err != nil {
		t.Fatalf("reply is not a batch: %v\n%q", err, frame)
	}
	acks := f.Messages()
	if len(acks) != 6 || f.Header == nil || !strings.HasSuffix(string(f.Batches[0].Header), "|B1") {
		t.Fatalf("reply batch %q", frame)
	}
	for i, want := range [][2]string{{"AA", "M1"}, {"AA", "M2"}, {"AA", "M3"}, {"AE", "M9"}, {"AA", "M8"}, {"AA", ""}} {
		m, err := hl7v2.Parse(acks[i])
		if err != nil || m.Get("MSA-1") != want[0] || m.Get("MSA-2") != want[1] {
			t.Errorf("ack %d: %q", i+1, acks[i])
		}
	}
	flags := map[string][]string{}
	for _, m := range streamMsgs(t, h.js, bus.StreamEvents) {
		ev := decodeEvent(t, m)
		flags[ev.MessageId] = ev.ReasonCodes
	}
	if len(flags) != 5 || !slices.Equal(flags["M8"], []string{"dq|bad-timestamp"}) || len(flags["M1"]) != 0 {
		t.Errorf("EVENTS: %q, want M1, M2, M3 unflagged, M8 and the message without MSH-10 flagged", flags)
	}
	if n := len(streamMsgs(t, h.js, bus.StreamDLQ)); n != 1 {
		t.Errorf("DLQ holds %d, want 1", n)
	}
	// A batch whose count is wrong is refused whole, with the BTS named.
	c.send(strings.Replace(string(data), "BTS|2", "BTS|5", 1))
	r := c.recv()
	if r.Get("MSA-1") != "AR" || string(r.Raw("ERR-2")) != "BTS^1^1" || !strings.Contains(r.Get("ERR-8"), "batch message count 5") {
		t.Errorf("bad count: %q", r.Bytes())
	}
	if n := len(streamMsgs(t, h.js, bus.StreamEvents)); n != 5 {
		t.Errorf("EVENTS holds %d after a refused batch, want 5", n)
	}
}

// TestSlowAndSilentPeers: a frame trickled slower than the minimum rate
// and a half frame followed by silence are cut off after ReadTimeout,
// whatever the idle timeout, and the listener keeps serving others.
func TestSlowAndSilentPeers(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.IdleTimeout = time.Minute
		c.ReadTimeout = 300 * time.Millisecond
		c.MinRate = 100
	})
	closedWithin := func(c *client, d time.Duration) {
		t.Helper()
		_ = c.nc.SetReadDeadline(time.Now().Add(d))
		if _, err := c.nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Errorf("connection not closed: %v", err)
		}
	}
	silent := h.dial(t)
	if _, err := silent.nc.Write([]byte("\x0bMSH|^~\\&|A|B|C|D|2026")); err != nil {
		t.Fatal(err)
	}
	slow := h.dial(t)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		frame := mllp.AppendFrame(nil, []byte(qbp("SL1")))
		for _, b := range frame {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond): // 20 bytes/s, under MinRate
			}
			if _, err := slow.nc.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	closedWithin(silent, 5*time.Second)
	closedWithin(slow, 5*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cut off after %s", d)
	}
	ok := h.dial(t)
	ok.send(qbp("OK"))
	if r := ok.recv(); r.Get("MSA-1") != "AA" {
		t.Errorf("other connection: %s", r.Get("MSA-1"))
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestMaxConnsRefusedPolitely(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxConns = 1 })
	first := h.dial(t)
	first.send(qbp("F1"))
	if r := first.recv(); r.Get("MSA-1") != "AA" {
		t.Fatal("first connection not served")
	}
	second := h.dial(t)
	second.send(qbp("X1"))
	r := second.recv()
	if r.Get("MSA-1") != "AE" || r.Get("MSA-2") != "X1" || r.Get("ERR-3.1") != "207" || !strings.Contains(r.Get("ERR-8"), "too many connections") {
		t.Errorf("refusal: %q", r.Bytes())
	}
	_ = second.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.nc.Read(make([]byte, 1)); err == nil {
		t.Error("refused connection left open")
	}
	first.send(qbp("F2"))
	if r := first.recv(); r.Get("MSA-1") != "AA" {
		t.Error("first connection not served after the refusal")
	}
	if n := len(streamMsgs(t, h.js, bus.StreamEvents)); n != 2 {
		t.Errorf("EVENTS holds %d, want 2", n)
	}
}

func TestTLS(t *testing.T) {
	pki := ingesttest.NewPKI(t, "hinscore test CA")
	for _, mutual := range []bool{false, true} {
		h := newHarness(t, func(c *Config) {
			c.TLSCert, c.TLSKey = pki.CertFile, pki.KeyFile
			if mutual {
				c.TLSClientCA = pki.CAFile
			}
		})
		dial := func(withCert bool) (*client, error) {
			cfg := pki.ClientTLS(withCert)
			d := &net.Dialer{Timeout: 5 * time.Second}
			nc, err := tls.DialWithDialer(d, "tcp", h.srv.Addrs()["neta"], cfg)
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { nc.Close() })
			return &client{t: t, nc: nc, r: mllp.NewReader(nc, 1<<20)}, nil
		}
		if mutual {
			// Without a client certificate: refused (TLS 1.3 reports it on the first read).
			c, err := dial(false)
			if err == nil {
				c.send(qbp("NOCERT"))
				_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = c.r.ReadFrame()
			}
			if err == nil {
				t.Fatal("mutual TLS: a client without a certificate was served")
			}
		}
		c, err := dial(true)
		if err != nil {
			t.Fatal(err)
		}
		c.send(qbp("TLS1"))
		if r := c.recv(); r.Get("MSA-1") != "AA" || r.Get("MSA-2") != "TLS1" {
			t.Errorf("mutual=%v: %q", mutual, r.Bytes())
		}
		// A plain-TCP peer on a TLS listener is not served either.
		plain := h.dial(t)
		plain.send(qbp("PLAIN"))
		_ = plain.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := plain.r.ReadFrame(); err == nil {
			t.Error("plain TCP served on a TLS listener")
		}
		if n := len(streamMsgs(t, h.js, bus.StreamEvents)); n != 1 {
			t.Errorf("mutual=%v: EVENTS holds %d, want 1", mutual, n)
		}
	}
}

func TestNewRejectsBadFiles(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.OrgDirectory = "testdata/missing.csv" },
		func(c *Config) { c.TLSCert, c.TLSKey = "testdata/missing.pem", "testdata/missing.key" },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if _, err := New(cfg, service.Deps{JetStream: fakeJS{}, Log: zerolog.Nop()}); err == nil || !strings.Contains(err.Error(), "HINSCORE_") {
			t.Errorf("New: %v, want an error naming the variable", err)
		}
	}
}

func TestImportTwiceStoresOnce(t *testing.T) {
	h := newHarness(t, nil)
	dir := t.TempDir()
	data, err := os.ReadFile("../lib/hl7v2/testdata/batch/two_batches.hl7")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "feed.hl7")
	// One message that cannot be read (a dead letter) and one without
	// MSH-10 (stored, flagged) among good ones.
	bad := "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08|M9|P|2.5\rP!D|1\r"
	noID := "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08||P|2.5\rPID|1||MRN9^^^HOSP_A\r"
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), "BTS|1", bad+noID+"BTS|3", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	im, cfg := testImporter(t, h.js)
	var calls []int
	for round := range 2 {
		st, err := im.ImportFile(context.Background(), "neta", file, func(done, total int) { calls = append(calls, done, total) })
		if err != nil {
			t.Fatal(err)
		}
		if st != (ImportStats{Messages: 5, Stored: 4, Rejected: 1}) {
			t.Errorf("round %d: %+v", round, st)
		}
	}
	if len(calls) != 4 || calls[0] != 5 || calls[1] != 5 {
		t.Errorf("progress calls %v", calls)
	}
	raws, events, dlq := streamMsgs(t, h.js, bus.StreamRaw), streamMsgs(t, h.js, bus.StreamEvents), streamMsgs(t, h.js, bus.StreamDLQ)
	if len(raws) != 0 || len(events) != 4 || len(dlq) != 1 {
		t.Fatalf("RAW %d EVENTS %d DLQ %d, want 0 4 1", len(raws), len(events), len(dlq))
	}
	if ev := decodeEvent(t, events[3]); !slices.Equal(ev.ReasonCodes, []string{"dq|no-control-id"}) || opened(t, ev) != noID {
		t.Errorf("the message without MSH-10: %v", ev)
	}
	// The same ids as over MLLP: the listener's copy of M1 is a duplicate.
	ev := decodeEvent(t, events[0])
	m1 := "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08|M1|P|2.5\rPID|1||MRN1^^^HOSP_A\r"
	if ev.EventId != ids.Event("neta", []byte(m1)).String() || opened(t, ev) != m1 || dlq[0].Header.Get(bus.HeaderRemote) != "import:"+file {
		t.Errorf("event %v, headers %v", ev, events[0].Header)
	}
	c := h.dial(t)
	c.send("MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900||ADT^A08|M1|P|2.5\rPID|1||MRN1^^^HOSP_A\r")
	if r := c.recv(); r.Get("MSA-1") != "AA" {
		t.Fatal("not acknowledged")
	}
	if n := len(streamMsgs(t, h.js, bus.StreamEvents)); n != 4 {
		t.Errorf("EVENTS holds %d after the same message over MLLP, want 4", n)
	}
	// A file whose batch count is wrong is refused before anything is stored.
	short := filepath.Join(dir, "short.hl7")
	if err := os.WriteFile(short, []byte(strings.Replace(string(data), "BTS|2", "BTS|3", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := im.ImportFile(context.Background(), "neta", short, nil); !errors.Is(err, hl7v2.ErrBatchCount) {
		t.Errorf("short file: %v", err)
	}
	if _, err := ImportFile(context.Background(), h.js, cfg, "bad network", file, nil); err == nil {
		t.Error("bad network accepted")
	}
}

// TestEmptyBatchIsValid: a batch with its headers and no message is valid
// HL7 v2 (zero messages): over MLLP it is answered by an empty batch, from
// a file it imports nothing, without an error or a dead letter either way.
func TestEmptyBatchIsValid(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t)
	empties := []string{
		"BHS|^~\\&|EHR|HOSP_A|HIE|NETB\rBTS|0\r",
		"FHS|^~\\&|EHR|HOSP_A|HIE|NETB\rBHS|^~\\&|EHR|HOSP_A|HIE|NETB\rBTS\rFTS|1\r",
		"FHS|^~\\&|EHR|HOSP_A|HIE|NETB\rFTS|0\r",
	}
	for _, b := range empties {
		c.send(b)
		_ = c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		frame, err := c.r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		f, err := hl7v2.SplitBatches(frame)
		if err != nil || len(f.Messages()) != 0 || !f.IsBatch() || !strings.Contains(string(frame), "BTS|0") {
			t.Errorf("%q: reply %q (%v), want an empty batch", b, frame, err)
		}
	}
	im, _ := testImporter(t, h.js)
	for _, b := range empties {
		if st, err := im.Import(context.Background(), "neta", "empty.hl7", []byte(b), nil); err != nil || st != (ImportStats{}) {
			t.Errorf("import %q: %+v, %v", b, st, err)
		}
	}
	wantHolds(t, h.js, bus.StreamEvents, 0)
	wantHolds(t, h.js, bus.StreamDLQ, 0)
}

// testImporter is an Importer with the harness's keys and clock, and its
// configuration.
func testImporter(t *testing.T, js jetstream.JetStream) (*Importer, Config) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PatientKey = []byte("0123456789abcdef-test-key")
	cfg.RawKeys = testRawKeys
	im, err := NewImporter(cfg, js, fixedClock{testNow})
	if err != nil {
		t.Fatal(err)
	}
	return im, cfg
}
