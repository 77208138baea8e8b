package simulator

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hinscore/hinscore/services/hl7v2/mllp"
)

// maxAckBytes bounds an acknowledgement frame.
const maxAckBytes = 1 << 20

// NetworkStats counts what happened to one network's feed.
type NetworkStats struct {
	Network string
	// Sent is every frame written, re-sends included.
	Sent int
	// Accepted is valid messages acknowledged AA/CA.
	Accepted int
	// Rejected is malformed frames rejected as expected (AE/AR/CE/CR).
	Rejected int
	// Retried is re-sends of valid messages after a rejection.
	Retried int
	// Failed is valid messages still rejected after MaxRetries re-sends.
	Failed int
	// Unexpected is malformed frames that were acknowledged AA.
	Unexpected int
}

// Stats sums a Send over all networks.
type Stats struct {
	NetworkStats
	Networks   []NetworkStats
	Duration   time.Duration
	MsgsPerSec float64
}

func (s Stats) String() string {
	return fmt.Sprintf("sent=%d accepted=%d rejected=%d retried=%d failed=%d unexpected=%d duration=%s msgs/s=%.0f",
		s.Sent, s.Accepted, s.Rejected, s.Retried, s.Failed, s.Unexpected, s.Duration.Round(time.Millisecond), s.MsgsPerSec)
}

// ErrNoTarget is returned when a network of the plan has no target address.
var ErrNoTarget = errors.New("simulator: network has no target")

// Send plays every network's feed, in event-time order, over one MLLP
// connection per network to targets[network], all networks at once. It
// returns when every frame has been acknowledged (or given up on). Failed
// and unexpected acknowledgements are counted, not returned as errors; the
// error is for connections that break or time out.
func (p *Plan) Send(ctx context.Context, targets map[string]string) (Stats, error) {
	for _, f := range p.feeds {
		if targets[f.profile.Name] == "" {
			return Stats{}, fmt.Errorf("simulator.Send: %w: %q", ErrNoTarget, f.profile.Name)
		}
	}
	start := time.Now()
	results := make([]NetworkStats, len(p.feeds))
	errs := make([]error, len(p.feeds))
	var wg sync.WaitGroup
	for i, f := range p.feeds {
		wg.Go(func() {
			s := &sender{cfg: p.cfg, msgs: f.msgs, stats: NetworkStats{Network: f.profile.Name}}
			errs[i] = s.run(ctx, targets[f.profile.Name])
			results[i] = s.stats
		})
	}
	wg.Wait()
	st := Stats{Networks: results, Duration: time.Since(start)}
	for _, r := range results {
		st.Sent += r.Sent
		st.Accepted += r.Accepted
		st.Rejected += r.Rejected
		st.Retried += r.Retried
		st.Failed += r.Failed
		st.Unexpected += r.Unexpected
	}
	if st.Duration > 0 {
		st.MsgsPerSec = float64(st.Sent) / st.Duration.Seconds()
	}
	if err := errors.Join(errs...); err != nil {
		return st, fmt.Errorf("simulator.Send: %w", err)
	}
	return st, nil
}

type pending struct {
	idx     int
	attempt int
}

// sender pipelines one feed over one connection: a writer keeps up to
// Window frames in flight, a reader matches acknowledgements to frames in
// order (MLLP answers in order on a connection).
type sender struct {
	cfg   Config
	msgs  []Message
	stats NetworkStats
}

func (s *sender) run(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: dial %s: %w", s.stats.Network, addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Unblock a pending read or write when the run is cancelled.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	window := make(chan struct{}, s.cfg.Window)
	inflight := make(chan pending, s.cfg.Window)
	// A rejected frame is re-sent ahead of the rest of the feed; at most
	// Window re-sends can be waiting.
	retries := make(chan pending, s.cfg.Window)
	done := make(chan struct{})

	var writeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		writeErr = s.write(ctx, conn, window, inflight, retries, done)
		if writeErr != nil {
			cancel()
		}
	})
	readErr := s.read(ctx, conn, window, inflight, retries)
	close(done)
	if readErr != nil {
		cancel()
	}
	wg.Wait()
	if writeErr != nil && !errors.Is(writeErr, context.Canceled) {
		return fmt.Errorf("%s: write: %w", s.stats.Network, writeErr)
	}
	if readErr != nil {
		return fmt.Errorf("%s: read: %w", s.stats.Network, readErr)
	}
	return nil
}

func (s *sender) write(ctx context.Context, conn net.Conn, window chan struct{}, inflight, retries chan pending, done chan struct{}) error {
	w := bufio.NewWriterSize(conn, 64<<10)
	var frame []byte
	next := 0
	for {
		var item pending
		select {
		case item = <-retries:
		default:
			if next < len(s.msgs) {
				item = pending{idx: next}
				next++
				break
			}
			if err := w.Flush(); err != nil {
				return err
			}
			select {
			case item = <-retries:
			case <-done:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case window <- struct{}{}:
		default:
			// The window is full: push out what is buffered, then wait.
			if err := w.Flush(); err != nil {
				return err
			}
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		inflight <- item
		frame = mllp.AppendFrame(frame[:0], s.msgs[item.idx].Raw)
		if _, err := w.Write(frame); err != nil {
			return err
		}
		s.stats.Sent++
	}
}

func (s *sender) read(ctx context.Context, conn net.Conn, window chan struct{}, inflight, retries chan pending) error {
	r := mllp.NewReader(conn, maxAckBytes)
	remaining := len(s.msgs)
	for remaining > 0 {
		var item pending
		select {
		case item = <-inflight:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := conn.SetReadDeadline(time.Now().Add(s.cfg.AckTimeout)); err != nil {
			return err
		}
		reply, err := r.ReadFrame()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("acknowledgement of frame %d: %w", item.idx, err)
		}
		<-window
		accepted := ackAccepted(reply)
		msg := s.msgs[item.idx]
		switch {
		case msg.Kind == KindMalformed:
			if accepted {
				s.stats.Unexpected++
			} else {
				s.stats.Rejected++
			}
			remaining--
		case accepted:
			s.stats.Accepted++
			remaining--
		case item.attempt < s.cfg.MaxRetries:
			s.stats.Retried++
			// Back off a little: a rejection usually means hinscore could
			// not store the copy just now.
			select {
			case <-time.After(time.Duration(item.attempt+1) * 50 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			retries <- pending{idx: item.idx, attempt: item.attempt + 1}
		default:
			s.stats.Failed++
			remaining--
		}
	}
	return nil
}

// ackAccepted reports whether an acknowledgement's MSA-1 is AA or CA. A reply
// without a readable MSA counts as a rejection.
func ackAccepted(reply []byte) bool {
	if len(reply) < 4 || !bytes.HasPrefix(reply, []byte("MSH")) {
		return false
	}
	sep := string(reply[3])
	for _, seg := range strings.FieldsFunc(string(reply), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if !strings.HasPrefix(seg, "MSA"+sep) {
			continue
		}
		fields := strings.Split(seg, sep)
		return slices.Contains([]string{"AA", "CA"}, fields[1])
	}
	return false
}
