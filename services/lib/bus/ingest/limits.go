package ingest

import (
	"time"

	"github.com/hinscore/hinscore/services/lib/service"
)

// Limits are what a listening ingest bounds and how it speaks TLS, each
// ingest reading them from variables of its own prefix (prefix+"_MAX_FRAME",
// "_IDLE_TIMEOUT", "_MAX_CONNS", "_MAX_CONNS_PER_LISTENER",
// "_MAX_CONNS_PER_REMOTE", "_MAX_INFLIGHT", "_READ_TIMEOUT", "_MIN_RATE",
// "_TLS_CERT", "_TLS_KEY", "_TLS_CLIENT_CA", "_TLS_CLIENT_CAS", "_TLS_CLIENT_URI").
type Limits struct {
	Prefix        string
	MaxFrameBytes int
	// IdleTimeout is measured from the last complete frame (or the
	// connection's start), not the last byte: a peer that sends a byte now
	// and then but never a frame is closed all the same.
	IdleTimeout time.Duration
	// MaxConns bounds the connections of all listeners together,
	// MaxConnsPerListener those of one listener (one network), and
	// MaxConnsPerRemote those of one remote host on one listener: one
	// network, or one host, cannot take every connection.
	MaxConns            int
	MaxConnsPerListener int
	MaxConnsPerRemote   int
	MaxInFlight         int
	ReadTimeout         time.Duration
	MinRate             int
	TLSCert             string
	TLSKey              string
	TLSClientCA         string
	// TLSClientCAs are the client CAs of the networks that have their own:
	// their listener accepts only certificates these CAs signed, the
	// other networks' listeners TLSClientCA's.
	TLSClientCAs NetworkFiles
	// TLSClientURI, a pattern with {network}, binds client certificates
	// to their network by a URI SAN (TLSFiles.ClientURI).
	TLSClientURI string
}

// Check adds to ps a problem for each bad limit, named by its variable.
func (l Limits) Check(ps *service.Problems) {
	p := l.Prefix
	if l.MaxFrameBytes < 1024 || l.MaxFrameBytes > 64<<20 {
		ps.Add(p+"_MAX_FRAME", "%d: want 1024..67108864", l.MaxFrameBytes)
	}
	if l.IdleTimeout <= 0 {
		ps.Add(p+"_IDLE_TIMEOUT", "%s: want > 0", l.IdleTimeout)
	}
	if l.MaxConns < 1 {
		ps.Add(p+"_MAX_CONNS", "%d: want >= 1", l.MaxConns)
	}
	if l.MaxConnsPerListener < 1 {
		ps.Add(p+"_MAX_CONNS_PER_LISTENER", "%d: want >= 1", l.MaxConnsPerListener)
	}
	if l.MaxConnsPerRemote < 1 || l.MaxConnsPerRemote > l.MaxConnsPerListener && l.MaxConnsPerListener >= 1 {
		ps.Add(p+"_MAX_CONNS_PER_REMOTE", "%d: want 1..%s_MAX_CONNS_PER_LISTENER", l.MaxConnsPerRemote, p)
	}
	if l.MaxInFlight < 1 || l.MaxInFlight > 65536 {
		ps.Add(p+"_MAX_INFLIGHT", "%d: want 1..65536", l.MaxInFlight)
	}
	if l.ReadTimeout <= 0 {
		ps.Add(p+"_READ_TIMEOUT", "%s: want > 0", l.ReadTimeout)
	}
	if l.MinRate < 1 {
		ps.Add(p+"_MIN_RATE", "%d: want >= 1 byte/s", l.MinRate)
	}
	if (l.TLSCert == "") != (l.TLSKey == "") {
		ps.Add(p+"_TLS_CERT", "%s_TLS_CERT and %s_TLS_KEY go together", p, p)
	}
	if l.TLSClientCA != "" && l.TLSCert == "" {
		ps.Add(p+"_TLS_CLIENT_CA", "mutual TLS needs %s_TLS_CERT and %s_TLS_KEY", p, p)
	}
	if len(l.TLSClientCAs) > 0 && l.TLSCert == "" {
		ps.Add(p+"_TLS_CLIENT_CAS", "mutual TLS needs %s_TLS_CERT and %s_TLS_KEY", p, p)
	}
	l.TLSFiles().CheckURI(ps, p+"_TLS_CLIENT_URI")
}

// ConnLimits are the connection limits.
func (l Limits) ConnLimits() ConnLimits {
	return ConnLimits{Max: l.MaxConns, PerListener: l.MaxConnsPerListener, PerRemote: l.MaxConnsPerRemote}
}

// TLS loads the listeners' TLS configuration; nil when TLS is off.
func (l Limits) TLS() (*TLSSet, error) { return NewTLSSet(l.TLSFiles()) }

// TLSFiles are the files of the listeners' TLS.
func (l Limits) TLSFiles() TLSFiles {
	return TLSFiles{Prefix: l.Prefix + "_TLS", Cert: l.TLSCert, Key: l.TLSKey, ClientCA: l.TLSClientCA,
		NetworkCAs: l.TLSClientCAs, ClientURI: l.TLSClientURI}
}
