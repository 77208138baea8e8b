package simulator

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/hl7v2"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
)

// ackServer is a tiny MLLP endpoint: it acknowledges AA every frame whose
// MSH has a control id and a message type, AE anything else, and rejects
// (AE) the control ids reject says so for, on the given attempt.
type ackServer struct {
	ln     net.Listener
	reject func(controlID string, attempt int) bool

	mu       sync.Mutex
	received int
	attempts map[string]int
	order    []string
}

func startAckServer(t *testing.T, reject func(string, int) bool) *ackServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &ackServer{ln: ln, reject: reject, attempts: map[string]int{}}
	serveConns(t, ln, s.serve)
	return s
}

// serveConns serves every connection ln accepts, each in its own
// goroutine, until the test ends (then it closes ln and waits for them).
func serveConns(t *testing.T, ln net.Listener, serve func(net.Conn)) {
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serve(c) })
		}
	})
}

// readable answers as hinscore does under the observer rule: a frame is
// refused only when it is no HL7 v2 message at all; id is its MSH-10.
func readable(frame []byte) (id string, ok bool) {
	m, err := hl7v2.ParseTolerant(frame)
	if err != nil {
		return "", false
	}
	return m.Get("MSH-10"), true
}

func (s *ackServer) serve(c net.Conn) {
	defer c.Close()
	r := mllp.NewReader(c, 1<<20)
	for {
		frame, err := r.ReadFrame()
		if err != nil {
			return
		}
		code := "AA"
		id, ok := readable(frame)
		if !ok {
			code = "AE"
		}
		s.mu.Lock()
		s.received++
		if id != "" {
			if s.reject != nil && s.reject(id, s.attempts[id]) {
				code = "AR"
			}
			s.attempts[id]++
			s.order = append(s.order, id)
		}
		s.mu.Unlock()
		ack := "MSH|^~\\&|HINSCORE|HINSCORE|SIM|SIM|20261122000000+0000||ACK|A" + id + "|P|2.5.1\rMSA|" + code + "|" + id + "\r"
		if _, err := c.Write(mllp.AppendFrame(nil, []byte(ack))); err != nil {
			return
		}
	}
}

func TestSend(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 600, MalformedRate: 0.02, Window: 16, MaxRetries: 2, DuplicateRate: -1})
	// Control ids ending in 7 are rejected once (then accepted on retry),
	// those ending in 13 always (given up after MaxRetries re-sends).
	srv := startAckServer(t, func(id string, attempt int) bool {
		return strings.HasSuffix(id, "13") || (strings.HasSuffix(id, "7") && attempt == 0)
	})
	targets := map[string]string{}
	for _, n := range p.Networks() {
		targets[n] = srv.ln.Addr().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := p.Send(ctx, targets)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	var once, always int
	for _, n := range p.Networks() {
		for _, m := range p.Messages(n) {
			switch {
			case m.Kind == KindMalformed:
			case strings.HasSuffix(m.ControlID, "13"):
				always++
			case strings.HasSuffix(m.ControlID, "7"):
				once++
			}
		}
	}
	if always == 0 || once == 0 {
		t.Fatalf("test plan has %d always and %d once rejected messages", always, once)
	}
	want := NetworkStats{
		Accepted: p.ValidMessages() - always,
		Rejected: p.MalformedMessages(),
		Retried:  once + 2*always,
		Failed:   always,
	}
	want.Sent = p.ValidMessages() + p.MalformedMessages() + want.Retried
	got := st.NetworkStats
	if got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if srv.received != st.Sent {
		t.Errorf("server received %d frames, Send reports %d", srv.received, st.Sent)
	}
	if len(st.Networks) != 3 || st.MsgsPerSec <= 0 {
		t.Errorf("per-network stats %+v, %.0f msgs/s", st.Networks, st.MsgsPerSec)
	}
}

func TestSendOrderWithoutRejections(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 300, Networks: DefaultNetworks()[:1], MalformedRate: -1, DuplicateRate: 0.05})
	srv := startAckServer(t, nil)
	st, err := p.Send(context.Background(), map[string]string{"northstar": srv.ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	msgs := p.Messages("northstar")
	if st.Accepted != len(msgs) || len(srv.order) != len(msgs) {
		t.Fatalf("accepted %d, server saw %d, plan has %d", st.Accepted, len(srv.order), len(msgs))
	}
	for i, m := range msgs {
		if srv.order[i] != m.ControlID {
			t.Fatalf("frame %d arrived as %s, want %s (delivery order)", i, srv.order[i], m.ControlID)
		}
	}
}

func TestSendErrors(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 50})
	if _, err := p.Send(context.Background(), map[string]string{"northstar": "127.0.0.1:1"}); !errors.Is(err, ErrNoTarget) {
		t.Errorf("missing targets: %v", err)
	}
	// A peer that reads but never answers: the ack timeout ends the run.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	p = mustGenerate(t, Config{Requests: 50, AckTimeout: 200 * time.Millisecond, ReconnectWithin: 700 * time.Millisecond})
	targets := map[string]string{}
	for _, n := range p.Networks() {
		targets[n] = ln.Addr().String()
	}
	var ne net.Error
	st, err := p.Send(context.Background(), targets)
	if !errors.Is(err, ErrGaveUp) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("silent peer: %v, want to give up after timeouts", err)
	}
	if st.Reconnects == 0 || st.Resent == 0 {
		t.Errorf("silent peer: %s, want reconnections and re-sends before giving up", st)
	}
	// Without reconnection the first timeout ends the run.
	p = mustGenerate(t, Config{Requests: 50, AckTimeout: 200 * time.Millisecond, ReconnectWithin: -1})
	if st, err := p.Send(context.Background(), targets); !errors.As(err, &ne) || !ne.Timeout() || st.Reconnects != 0 {
		t.Errorf("silent peer without reconnection: %v (%s), want one timeout", err, st)
	}
	// Nobody listening: dialling is retried, then given up.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	p = mustGenerate(t, Config{Requests: 10, Networks: DefaultNetworks()[:1], ReconnectWithin: 300 * time.Millisecond})
	if _, err := p.Send(context.Background(), map[string]string{"northstar": addr}); !errors.Is(err, ErrGaveUp) {
		t.Errorf("nobody listening: %v, want ErrGaveUp", err)
	}
}

func TestAckAccepted(t *testing.T) {
	tests := []struct {
		reply string
		want  bool
	}{
		{"MSH|^~\\&|A|B|C|D|x||ACK|1|P|2.5.1\rMSA|AA|1\r", true},
		{"MSH|^~\\&|A|B|C|D|x||ACK|1|P|2.5.1\nMSA|CA|1\n", true},
		{"MSH#^~\\&#A\rMSA#AA#1\r", true},
		{"MSH|^~\\&|A|B|C|D|x||ACK|1|P|2.5.1\rMSA|AE|1\rERR|||207\r", false},
		{"MSH|^~\\&|A|B|C|D|x||RSP^K22|1|P|2.5.1\rMSA|AR|1\r", false},
		{"MSH|^~\\&|A|B\r", false},
		{"garbage", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ackAccepted([]byte(tt.reply)); got != tt.want {
			t.Errorf("ackAccepted(%q) = %v", tt.reply, got)
		}
	}
}

func FuzzAckAccepted(f *testing.F) {
	f.Add([]byte("MSH|^~\\&|A|B|C|D|x||ACK|1|P|2.5.1\rMSA|AA|1\r"))
	f.Add([]byte("MSH|^~\\&|A\rMSA|AE|1\r"))
	f.Add([]byte("MSH|"))
	f.Fuzz(func(t *testing.T, reply []byte) {
		if ackAccepted(reply) && !strings.Contains(string(reply), "MSA") {
			t.Errorf("accepted a reply without MSA: %q", reply)
		}
	})
}
