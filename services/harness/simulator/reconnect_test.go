package simulator

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
)

// flakyServer acknowledges like ackServer but misbehaves on its first
// connections: connection i (counting from 0) reads cut[i] frames, answers
// only the first half of them, then either closes the connection or
// (silent) stops answering while keeping it open.
type flakyServer struct {
	ln     net.Listener
	cut    []int
	silent bool

	mu    sync.Mutex
	conns int
	// acked holds the raw bytes of every frame acknowledged AA; copies
	// counts how many times each was received.
	acked  map[string]bool
	copies map[string]int
}

func startFlakyServer(t *testing.T, cut []int, silent bool) *flakyServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &flakyServer{ln: ln, cut: cut, silent: silent, acked: map[string]bool{}, copies: map[string]int{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			n := s.conns
			s.conns++
			s.mu.Unlock()
			limit := -1
			if n < len(s.cut) {
				limit = s.cut[n]
			}
			wg.Go(func() { s.serve(c, limit) })
		}
	})
	return s
}

func (s *flakyServer) serve(c net.Conn, limit int) {
	defer c.Close()
	r := mllp.NewReader(c, 1<<20)
	for read := 0; limit < 0 || read < limit; read++ {
		frame, err := r.ReadFrame()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.copies[string(frame)]++
		s.mu.Unlock()
		if limit >= 0 && read >= limit/2 {
			continue // received, possibly stored, never acknowledged
		}
		code := "AA"
		id, ok := readable(frame)
		if !ok {
			code = "AE"
		} else {
			s.mu.Lock()
			s.acked[string(frame)] = true
			s.mu.Unlock()
		}
		ack := "MSH|^~\\&|HINSCORE|HINSCORE|SIM|SIM|20261122000000+0000||ACK|A" + id + "|P|2.5.1\rMSA|" + code + "|" + id + "\r"
		if _, err := c.Write(mllp.AppendFrame(nil, []byte(ack))); err != nil {
			return
		}
	}
	if s.silent {
		// Keep the connection open and answer nothing: only the sender's
		// ack timeout gets it out of here.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var buf [4096]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}
}

// TestSendSurvivesBrokenConnections: the ingest drops the connection (or
// goes silent) several times with frames in flight; every valid frame is
// still acknowledged in the end, none is lost, and the reconnections and
// re-sends are counted.
func TestSendSurvivesBrokenConnections(t *testing.T) {
	for _, silent := range []bool{false, true} {
		name := map[bool]string{false: "closed", true: "silent"}[silent]
		t.Run(name, func(t *testing.T) {
			p := mustGenerate(t, Config{
				Requests: 400, Networks: DefaultNetworks()[:1], Window: 32, MalformedRate: 0.01,
				AckTimeout: 300 * time.Millisecond, ReconnectWithin: 5 * time.Second,
			})
			srv := startFlakyServer(t, []int{60, 100, 45}, silent)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := p.Send(ctx, map[string]string{"northstar": srv.ln.Addr().String()})
			if err != nil {
				t.Fatalf("Send: %v (%s)", err, st)
			}
			if st.Reconnects != 3 || st.Resent == 0 {
				t.Errorf("%s: want 3 reconnections and some re-sends", st)
			}
			if st.Accepted+st.Rejected != p.Frames() || st.Failed != 0 || st.Unexpected != 0 {
				t.Errorf("%s: want all %d frames acknowledged", st, p.Frames())
			}
			if st.Sent != p.Frames()+st.Resent {
				t.Errorf("sent %d frames, want %d + %d re-sent", st.Sent, p.Frames(), st.Resent)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			resent := 0
			for _, m := range p.Messages("northstar") {
				if m.Kind != KindMalformed && !srv.acked[string(m.Raw)] {
					t.Fatalf("%s %s never acknowledged", m.Kind, m.ControlID)
				}
				if srv.copies[string(m.Raw)] > 1 && !m.Duplicate {
					resent++
				}
			}
			if resent == 0 {
				t.Error("the server never received a frame twice: nothing was re-sent")
			}
		})
	}
}

// TestSendDuplicates: exact copies are sent, acknowledged and counted as
// frames, while the distinct valid messages stay ValidMessages.
func TestSendDuplicates(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 300, Networks: DefaultNetworks()[:1], DuplicateRate: 0.1, MalformedRate: -1})
	srv := startAckServer(t, nil)
	st, err := p.Send(context.Background(), map[string]string{"northstar": srv.ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Duplicates() == 0 || st.Accepted != p.ValidMessages()+p.Duplicates() || st.Sent != p.Frames() {
		t.Errorf("%s: want %d distinct messages and %d duplicates accepted", st, p.ValidMessages(), p.Duplicates())
	}
}

// TestSendRate: a steady rate stretches the run to frames/rate, reports
// progress and every acknowledgement.
func TestSendRate(t *testing.T) {
	for _, cfg := range []Config{
		{Requests: 300, Rate: 1500},
		{Requests: 300, NetworkRate: 500},
	} {
		var progress bytes.Buffer
		var mu sync.Mutex
		acks := 0
		cfg.Progress, cfg.ProgressEvery = &syncWriter{w: &progress, mu: &mu}, 50*time.Millisecond
		cfg.Acked = func(string, Message, bool, time.Time) { mu.Lock(); acks++; mu.Unlock() }
		p := mustGenerate(t, cfg)
		srv := startAckServer(t, nil)
		targets := map[string]string{}
		for _, n := range p.Networks() {
			targets[n] = srv.ln.Addr().String()
		}
		st, err := p.Send(context.Background(), targets)
		if err != nil {
			t.Fatal(err)
		}
		// The slowest network sets the pace: frames / its rate.
		want := time.Duration(0)
		for i, r := range p.sendRates() {
			if d := time.Duration(float64(len(p.feeds[i].msgs)-1) / r * float64(time.Second)); d > want {
				want = d
			}
		}
		if st.Duration < want*9/10 || st.Duration > 3*want+time.Second {
			t.Errorf("rate %g/%g: %d frames in %s, want about %s", cfg.Rate, cfg.NetworkRate, st.Sent, st.Duration, want)
		}
		mu.Lock()
		lines := strings.Count(progress.String(), "\n")
		if acks != st.Sent || lines < 2 || !strings.Contains(progress.String(), "acked=") {
			t.Errorf("%d acks seen for %d frames; progress:\n%s", acks, st.Sent, progress.String())
		}
		mu.Unlock()
	}
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
