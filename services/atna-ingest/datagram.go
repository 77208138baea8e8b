package atnaingest

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/syslog"
)

// serveDatagrams receives one network's RFC 5426 datagrams until the
// listener closes. A datagram is one syslog message; with no reply and no
// retry in UDP, one that is neither stored nor dead-lettered is counted
// lost. A settler awaits the PubAcks, at most MaxInFlight records behind.
func (s *Server) serveDatagrams(network string, pc net.PacketConn) {
	m := s.m.forNetwork(network, transportDatagram)
	pending := make(chan *record, s.cfg.MaxInFlight)
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		for rec := range pending {
			if !s.settle(rec, m) {
				m.lost.Inc()
			}
		}
	}()
	defer func() { close(pending); <-settled }()
	buf := make([]byte, maxDatagram+1)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Str("network", network).Msg("UDP read")
			continue
		}
		m.received.Inc()
		m.bytes.Add(float64(n))
		data := bytes.Clone(buf[:n])
		if n > s.cfg.MaxFrameBytes {
			err := fmt.Errorf("datagram of %d bytes, over %d (HINSCORE_ATNA_MAX_FRAME)", n, s.cfg.MaxFrameBytes)
			if s.deadLetter(network, addr.String(), reasonTooLarge, data[:min(n, syslog.MaxDropped)], err) != nil {
				m.lost.Inc()
			}
			continue
		}
		pending <- s.handle(network, addr.String(), ingest.FeedOfAddr(ingest.ChannelSyslog, addr.String()), data, syslog.ParseDatagram)
	}
}
