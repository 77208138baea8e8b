package ingest

import (
	"crypto/tls"
	"net"
)

// The channels of a feed name (ExchangeEvent.feed): how messages came.
const (
	ChannelMLLP   = "mllp"
	ChannelSyslog = "syslog"
	ChannelImport = "import"
)

// Feed names the feed connection of a stream connection, once its TLS
// handshake is done: the channel and the peer. The peer is the client
// certificate's subject common name, else its first URI SAN (what the
// network's interface engine proves it is, the same over every
// reconnection), else the remote host without its port (a reconnection
// comes from a new port but is the same feed).
func (c *StreamConn) Feed(channel string) string {
	if tc, ok := c.NC.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			if cn := certs[0].Subject.CommonName; cn != "" {
				return channel + ":" + cn
			}
			if len(certs[0].URIs) > 0 {
				return channel + ":" + certs[0].URIs[0].String()
			}
		}
	}
	return FeedOfAddr(channel, c.Remote)
}

// FeedOfAddr names the feed of a peer known only by its address (a
// datagram's sender): the channel and the host without the port.
func FeedOfAddr(channel, addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return channel + ":" + host
	}
	return channel + ":" + addr
}
