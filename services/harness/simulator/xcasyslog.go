package simulator

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"
)

// atnaPRI is authpriv (10) × 8 + notice (5), the priority ATNA actors use.
const atnaPRI = 10*8 + 5

// syslogMessage wraps an AuditMessage in the gateway's syslog form:
// RFC 5424 (MSGID "IHE+RFC-3881", no structured data, a BOM before the
// XML) or the older BSD form of RFC 3164 (second precision, no year).
func syslogMessage(g Gateway, at time.Time, pid int, body []byte) []byte {
	var hdr string
	if g.Syslog == SyslogBSD {
		hdr = fmt.Sprintf("<%d>%s %s IHE_XCA_GW[%d]: ", atnaPRI, at.UTC().Format(time.Stamp), g.Host, pid)
	} else {
		hdr = fmt.Sprintf("<%d>1 %s %s IHE_XCA_GW %d IHE+RFC-3881 - \ufeff", atnaPRI, at.UTC().Format(auditTime), g.Host, pid)
	}
	return append([]byte(hdr), body...)
}

// appendSyslogFrame appends msg as one RFC 5425 octet-counted frame:
// MSG-LEN SP SYSLOG-MSG, nothing between frames.
func appendSyslogFrame(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}

// syslogDeliverer writes octet-counted frames, one TLS connection per
// gateway, and keeps each gateway's replay window: RFC 5425 has no
// acknowledgement, so a sender learns that a listener lost what it had
// read only from the connection breaking, and a careful one (a forwarder
// with a disk queue) writes the tail of its queue again.
type syslogDeliverer struct {
	cfg      XCAConfig
	target   XCATarget
	window   time.Duration
	gateways map[string]*syslogGateway
}

// syslogGateway is one gateway's connection and what it wrote within the
// replay window before its last frame.
type syslogGateway struct {
	conn net.Conn
	// closed is closed once the listener has closed the connection (a
	// listener never writes to it, so the read only ever ends).
	closed  chan struct{}
	dialled bool
	// broken: the connection broke since the window was last written again.
	broken bool
	sent   []writtenFrame
	// bytes is the size of sent's frames.
	bytes int
}

// maxResendBytes bounds a gateway's replay window however fast it sends.
const maxResendBytes = 32 << 20

type writtenFrame struct {
	at    time.Time
	frame []byte
}

func (s *syslogDeliverer) gateway(name string) *syslogGateway {
	g := s.gateways[name]
	if g == nil {
		g = &syslogGateway{}
		s.gateways[name] = g
	}
	return g
}

func (s *syslogDeliverer) deliver(ctx context.Context, m XCAMessage, st *XCAGatewayStats) error {
	g := s.gateway(m.Gateway)
	frame := appendSyslogFrame(nil, m.Raw)
	r := retrier{within: s.cfg.ReconnectWithin}
	for {
		err := s.ready(ctx, g, st)
		if err == nil {
			if err = s.write(g, frame); err == nil {
				st.Sent++
				g.remember(frame, time.Now(), s.window)
				return nil
			}
			g.drop()
			st.Retried++
		}
		if werr := r.wait(ctx, err); werr != nil {
			return werr
		}
	}
}

// ready gives the gateway a live connection: a connection the listener
// closed is dropped, a new one dialled, and after a break the replay
// window is written on it first.
func (s *syslogDeliverer) ready(ctx context.Context, g *syslogGateway, st *XCAGatewayStats) error {
	if g.conn != nil && g.peerClosed() {
		g.drop()
	}
	if g.conn == nil {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: s.cfg.WriteTimeout}, Config: s.target.TLS}
		c, err := d.DialContext(ctx, "tcp", s.target.Syslog)
		if err != nil {
			return fmt.Errorf("dial %s: %w", s.target.Syslog, err)
		}
		if g.dialled {
			st.Reconnects++
		}
		g.dialled = true
		g.attach(c)
	}
	if !g.broken {
		return nil
	}
	for _, f := range g.sent {
		if err := s.write(g, f.frame); err != nil {
			g.drop()
			return err
		}
		st.Resent++
	}
	g.broken = false
	return nil
}

func (s *syslogDeliverer) write(g *syslogGateway, frame []byte) error {
	_ = g.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, err := g.conn.Write(frame)
	return err
}

// flush writes the replay window again on every connection the listener
// closed after the gateway's last frame: no later frame would find it.
func (s *syslogDeliverer) flush(ctx context.Context, stats func(gateway string) *XCAGatewayStats) error {
	for _, name := range slices.Sorted(maps.Keys(s.gateways)) {
		g := s.gateways[name]
		r := retrier{within: s.cfg.ReconnectWithin}
		for g.broken || (g.conn != nil && g.peerClosed()) {
			err := s.ready(ctx, g, stats(name))
			if err == nil {
				break
			}
			if werr := r.wait(ctx, err); werr != nil {
				return fmt.Errorf("%s: %w", name, werr)
			}
		}
	}
	return nil
}

func (s *syslogDeliverer) close() {
	for _, g := range s.gateways {
		if g.conn != nil {
			g.conn.Close()
		}
	}
}

// attach makes c the gateway's connection and watches for the listener
// closing it.
func (g *syslogGateway) attach(c net.Conn) {
	closed := make(chan struct{})
	g.conn, g.closed = c, closed
	go func() {
		defer close(closed)
		var b [512]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
		}
	}()
}

func (g *syslogGateway) peerClosed() bool {
	select {
	case <-g.closed:
		return true
	default:
		return false
	}
}

// drop closes a broken connection; the window is written again on the next.
func (g *syslogGateway) drop() {
	g.conn.Close()
	g.conn = nil
	g.broken = len(g.sent) > 0
}

// remember keeps frame, written at, and forgets what was written more than
// window before it, and the oldest frames beyond maxResendBytes.
func (g *syslogGateway) remember(frame []byte, at time.Time, window time.Duration) {
	if window <= 0 {
		return
	}
	g.sent = append(g.sent, writtenFrame{at: at, frame: frame})
	g.bytes += len(frame)
	i := 0
	for i < len(g.sent)-1 && (g.sent[i].at.Before(at.Add(-window)) || g.bytes > maxResendBytes) {
		g.bytes -= len(g.sent[i].frame)
		i++
	}
	g.sent = g.sent[i:]
}
