package simulator

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
	"github.com/hinscore/hinscore/services/lib/service"
)

// maxAckBytes bounds an acknowledgement frame.
const maxAckBytes = 1 << 20

// Reconnection backoff: short enough that a restarted ingest is found again
// well within the linker's idle time, long enough not to spin on a refusal.
const (
	minReconnectBackoff = 50 * time.Millisecond
	maxReconnectBackoff = time.Second
)

// NetworkStats counts what happened to one network's feed.
type NetworkStats struct {
	Network string
	// Sent is every frame written, re-sends included.
	Sent int
	// Accepted is valid messages acknowledged AA/CA (exact duplicates included).
	Accepted int
	// Rejected is malformed frames rejected as expected (AE/AR/CE/CR).
	Rejected int
	// Retried is re-sends of valid messages after a rejection.
	Retried int
	// Failed is valid messages still rejected after MaxRetries re-sends.
	Failed int
	// Unexpected is malformed frames that were acknowledged AA.
	Unexpected int
	// Reconnects is connections opened again after a break or an ack timeout.
	Reconnects int
	// Resent is frames written again on a new connection because the old
	// one broke before their acknowledgement arrived (at-least-once).
	Resent int
}

func (s *NetworkStats) add(o NetworkStats) {
	s.Sent += o.Sent
	s.Accepted += o.Accepted
	s.Rejected += o.Rejected
	s.Retried += o.Retried
	s.Failed += o.Failed
	s.Unexpected += o.Unexpected
	s.Reconnects += o.Reconnects
	s.Resent += o.Resent
}

// Stats sums a Send over all networks.
type Stats struct {
	NetworkStats
	Networks   []NetworkStats
	Duration   time.Duration
	MsgsPerSec float64
}

func (s Stats) String() string {
	return fmt.Sprintf("sent=%d accepted=%d rejected=%d retried=%d failed=%d unexpected=%d reconnects=%d resent=%d duration=%s msgs/s=%.0f",
		s.Sent, s.Accepted, s.Rejected, s.Retried, s.Failed, s.Unexpected, s.Reconnects, s.Resent,
		s.Duration.Round(time.Millisecond), s.MsgsPerSec)
}

// ErrNoTarget is returned when a network of the plan has no target address.
var ErrNoTarget = errors.New("simulator: network has no target")

// ErrGaveUp is returned when a network's connection stayed broken (or
// silent) for longer than Config.ReconnectWithin.
var ErrGaveUp = errors.New("simulator: gave up reconnecting")

// Send plays every network's feed, in delivery order, over one MLLP
// connection per network to targets[network] (a FHIR network's: POSTs to
// the base URL targets[network], see runFHIR), all networks at once. It
// returns when every frame has been acknowledged (or given up on). Failed
// and unexpected acknowledgements are counted, not returned as errors; the
// error is for connections that stay broken or silent longer than
// ReconnectWithin (a broken connection or an ack timeout is followed by a
// reconnection and a re-send of every unacknowledged frame).
func (p *Plan) Send(ctx context.Context, targets map[string]string) (Stats, error) {
	for _, f := range p.feeds {
		if targets[f.profile.Name] == "" {
			return Stats{}, fmt.Errorf("simulator.Send: %w: %q", ErrNoTarget, f.profile.Name)
		}
	}
	start := time.Now()
	rates := p.sendRates()
	senders := make([]*sender, len(p.feeds))
	for i, f := range p.feeds {
		senders[i] = &sender{
			cfg: p.cfg, addr: targets[f.profile.Name], msgs: f.msgs, rate: rates[i],
			stats: NetworkStats{Network: f.profile.Name},
		}
	}
	stopProgress := p.progress(ctx, senders, start)
	errs := make([]error, len(senders))
	var wg sync.WaitGroup
	for i, s := range senders {
		if p.feeds[i].profile.fhir() {
			wg.Go(func() { errs[i] = s.runFHIR(ctx) })
			continue
		}
		wg.Go(func() { errs[i] = s.run(ctx) })
	}
	wg.Wait()
	stopProgress()
	st := Stats{Networks: make([]NetworkStats, len(senders)), Duration: time.Since(start)}
	for i, s := range senders {
		st.Networks[i] = s.stats
		st.add(s.stats)
	}
	if st.Duration > 0 {
		st.MsgsPerSec = float64(st.Sent) / st.Duration.Seconds()
	}
	if err := errors.Join(errs...); err != nil {
		return st, fmt.Errorf("simulator.Send: %w", err)
	}
	return st, nil
}

// sendRates gives each network its frames/s (0 = as fast as acks allow).
// A total Rate is split in proportion to the feeds' sizes so that every
// network finishes at the same time.
func (p *Plan) sendRates() []float64 {
	out := make([]float64, len(p.feeds))
	total := 0
	for _, f := range p.feeds {
		total += len(f.msgs)
	}
	for i, f := range p.feeds {
		switch {
		case p.cfg.NetworkRate > 0:
			out[i] = p.cfg.NetworkRate
		case p.cfg.Rate > 0 && total > 0:
			out[i] = p.cfg.Rate * float64(len(f.msgs)) / float64(total)
		}
	}
	return out
}

// progress prints a line every ProgressEvery while Send runs, and a last
// one when it ends; the returned func stops it.
func (p *Plan) progress(ctx context.Context, senders []*sender, start time.Time) func() {
	if p.cfg.Progress == nil {
		return func() {}
	}
	total := 0
	for _, s := range senders {
		total += len(s.msgs)
	}
	line := func(now time.Time, lastAcked int64, lastAt time.Time) int64 {
		var sent, acked, reconnects int64
		for _, s := range senders {
			sent += s.sentN.Load()
			acked += s.ackedN.Load()
			reconnects += s.reconnectN.Load()
		}
		rate := 0.0
		if d := now.Sub(lastAt).Seconds(); d > 0 {
			rate = float64(acked-lastAcked) / d
		}
		fmt.Fprintf(p.cfg.Progress, "simulator: %6.1fs sent=%d acked=%d/%d (%.1f%%) rate=%.0f msg/s reconnects=%d\n",
			now.Sub(start).Seconds(), sent, acked, total, 100*float64(acked)/float64(max(total, 1)), rate, reconnects)
		return acked
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.cfg.ProgressEvery)
		defer t.Stop()
		lastAcked, lastAt := int64(0), start
		for {
			select {
			case now := <-t.C:
				lastAcked, lastAt = line(now, lastAcked, lastAt), now
			case <-ctx.Done():
				line(time.Now(), 0, start)
				return
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

type pending struct {
	idx     int
	attempt int
	// written is set once the frame has gone out on some connection.
	written bool
	// retry marks a re-send scheduled after a rejection (counted in Retried).
	retry bool
}

// sender pipelines one feed over one connection at a time: a writer keeps
// up to Window frames in flight, a reader matches acknowledgements to
// frames in order (MLLP answers in order on a connection). When the
// connection breaks or an acknowledgement times out, every frame not yet
// acknowledged is written again, in feed order, on a new connection.
type sender struct {
	cfg   Config
	addr  string
	msgs  []Message
	rate  float64
	stats NetworkStats

	// Read by the progress line while the run goes on.
	sentN, ackedN, reconnectN atomic.Int64

	// retrying counts rejected frames not yet accepted or given up on;
	// while it is above zero no new frame is taken, so that a re-sent
	// frame is overtaken by at most the frames already in flight.
	retrying atomic.Int64
	resume   chan struct{}

	// State carried from one connection to the next.
	next      int       // first feed index never taken
	redo      []pending // unacknowledged frames to write first, in feed order
	remaining int       // frames without a final acknowledgement
	paceStart time.Time
	paced     int64
}

func (s *sender) run(ctx context.Context) error {
	s.remaining = len(s.msgs)
	s.resume = make(chan struct{}, 1)
	var d net.Dialer
	var outage time.Time // when the current break began; zero while acks flow
	backoff := minReconnectBackoff
	connected := false
	for {
		conn, err := d.DialContext(ctx, "tcp", s.addr)
		if err == nil {
			if connected {
				s.stats.Reconnects++
				s.reconnectN.Add(1)
			}
			connected = true
			var progressed bool
			progressed, err = s.session(ctx, conn)
			conn.Close()
			if err == nil {
				return nil
			}
			if progressed {
				outage, backoff = time.Time{}, minReconnectBackoff
			}
		} else {
			err = fmt.Errorf("dial %s: %w", s.addr, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", s.stats.Network, ctx.Err())
		}
		if s.cfg.ReconnectWithin < 0 {
			return fmt.Errorf("%s: %w", s.stats.Network, err)
		}
		if outage.IsZero() {
			outage = time.Now()
		}
		if time.Since(outage) > s.cfg.ReconnectWithin {
			return fmt.Errorf("%s: %w after %s: %w", s.stats.Network, ErrGaveUp, s.cfg.ReconnectWithin, err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", s.stats.Network, ctx.Err())
		}
		backoff = min(2*backoff, maxReconnectBackoff)
	}
}

// session plays the feed over one connection until every frame is
// acknowledged (nil) or the connection fails. It reports whether any
// acknowledgement arrived, and leaves the unacknowledged frames in s.redo.
func (s *sender) session(ctx context.Context, conn net.Conn) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Unblock a pending read or write when the session ends.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	// The rate is held steady from each (re)connection on: an outage is
	// not made up for with a burst.
	s.paceStart, s.paced = time.Now(), 0

	window := make(chan struct{}, s.cfg.Window)
	inflight := make(chan pending, s.cfg.Window)
	// A rejected frame is re-sent ahead of the rest of the feed; at most
	// Window re-sends can be waiting.
	retries := make(chan pending, s.cfg.Window)
	done := make(chan struct{})

	var held *pending
	var writeErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		held, writeErr = s.write(ctx, conn, window, inflight, retries, done)
		if writeErr != nil {
			cancel()
		}
	})
	progressed, cur, readErr := s.read(ctx, conn, window, inflight, retries)
	close(done)
	if readErr != nil {
		cancel()
	}
	wg.Wait()
	if readErr == nil {
		return progressed, nil
	}
	// Every frame without its acknowledgement goes out again, in feed order.
	redo := s.redo
	if cur != nil {
		redo = append(redo, *cur)
	}
	if held != nil {
		redo = append(redo, *held)
	}
	close(inflight)
	for it := range inflight {
		redo = append(redo, it)
	}
	for len(retries) > 0 {
		redo = append(redo, <-retries)
	}
	slices.SortFunc(redo, func(a, b pending) int { return a.idx - b.idx })
	s.redo = redo
	if writeErr != nil && !errors.Is(writeErr, context.Canceled) {
		return progressed, fmt.Errorf("%s: write: %w", s.stats.Network, writeErr)
	}
	return progressed, fmt.Errorf("%s: read: %w", s.stats.Network, readErr)
}

// take returns the next frame to write: a re-send after a rejection, then
// what a broken connection left unacknowledged, then the rest of the feed.
func (s *sender) take(retries chan pending) (pending, bool) {
	select {
	case it := <-retries:
		return it, true
	default:
	}
	if len(s.redo) > 0 {
		it := s.redo[0]
		s.redo = s.redo[1:]
		return it, true
	}
	if s.next < len(s.msgs) && s.retrying.Load() == 0 {
		s.next++
		return pending{idx: s.next - 1}, true
	}
	return pending{}, false
}

// pace waits for the frame's slot at the configured rate, flushing first
// so that what is buffered is not held back by the wait.
func (s *sender) pace(ctx context.Context, w *bufio.Writer) error {
	if s.rate <= 0 {
		return nil
	}
	due := s.paceStart.Add(time.Duration(float64(s.paced) / s.rate * float64(time.Second)))
	s.paced++
	wait := time.Until(due)
	if wait <= 0 {
		return nil
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return service.Sleep(ctx, wait)
}

// write returns the frame it had taken but not yet handed to the reader
// when the connection ended.
func (s *sender) write(ctx context.Context, conn net.Conn, window chan struct{}, inflight, retries chan pending, done chan struct{}) (*pending, error) {
	w := bufio.NewWriterSize(conn, 64<<10)
	var frame []byte
	for {
		item, ok := s.take(retries)
		if !ok {
			if err := w.Flush(); err != nil {
				return nil, err
			}
			select {
			case item = <-retries:
			case <-s.resume:
				continue
			case <-done:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err := s.pace(ctx, w); err != nil {
			return &item, err
		}
		select {
		case window <- struct{}{}:
		default:
			// The window is full: push out what is buffered, then wait.
			if err := w.Flush(); err != nil {
				return &item, err
			}
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return &item, ctx.Err()
			}
		}
		if item.written && !item.retry {
			s.stats.Resent++
		}
		item.written, item.retry = true, false
		inflight <- item
		frame = mllp.AppendFrame(frame[:0], s.msgs[item.idx].Raw)
		if _, err := w.Write(frame); err != nil {
			return nil, err
		}
		s.stats.Sent++
		s.sentN.Add(1)
	}
}

// read returns whether any acknowledgement arrived and, on failure, the
// frame whose acknowledgement it was waiting for (or was about to re-send).
func (s *sender) read(ctx context.Context, conn net.Conn, window chan struct{}, inflight, retries chan pending) (bool, *pending, error) {
	r := mllp.NewReader(conn, maxAckBytes)
	progressed := false
	for s.remaining > 0 {
		var item pending
		select {
		case item = <-inflight:
		case <-ctx.Done():
			return progressed, nil, ctx.Err()
		}
		if err := conn.SetReadDeadline(time.Now().Add(s.cfg.AckTimeout)); err != nil {
			return progressed, &item, err
		}
		reply, err := r.ReadFrame()
		if err != nil {
			if ctx.Err() != nil {
				return progressed, &item, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return progressed, &item, fmt.Errorf("acknowledgement of frame %d: %w", item.idx, err)
		}
		progressed = true
		<-window
		accepted := ackAccepted(reply)
		msg := s.msgs[item.idx]
		if s.cfg.Acked != nil {
			s.cfg.Acked(s.stats.Network, msg, accepted, time.Now())
		}
		switch {
		case msg.Kind == KindMalformed:
			if accepted {
				s.stats.Unexpected++
			} else {
				s.stats.Rejected++
			}
		case accepted:
			s.stats.Accepted++
			s.retried(item)
		case item.attempt < s.cfg.MaxRetries:
			s.stats.Retried++
			if item.attempt == 0 {
				s.retrying.Add(1)
			}
			next := pending{idx: item.idx, attempt: item.attempt + 1, written: true, retry: true}
			// Back off a little: a rejection usually means hinscore could
			// not store the copy just now.
			select {
			case <-time.After(time.Duration(item.attempt+1) * 50 * time.Millisecond):
			case <-ctx.Done():
				return progressed, &next, ctx.Err()
			}
			retries <- next
			continue
		default:
			s.stats.Failed++
			s.retried(item)
		}
		s.remaining--
		s.ackedN.Add(1)
	}
	return progressed, nil, nil
}

// retried lets new frames flow again once the last rejected frame is settled.
func (s *sender) retried(item pending) {
	if item.attempt > 0 && s.retrying.Add(-1) == 0 {
		select {
		case s.resume <- struct{}{}:
		default:
		}
	}
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
