package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

// NetworkPlaceholder stands for the listener's network in a client URI
// pattern (TLSFiles.ClientURI): "urn:hinscore:network:{network}".
const NetworkPlaceholder = "{network}"

// Why a TLS handshake failed (TLSSet.Refusal), the "reason" label of the
// ingests' rejection counters.
const (
	// RefusedWrongNetwork: a valid client certificate of another network
	// (its CA is another network's, or its URI names another network).
	RefusedWrongNetwork = "wrong_network"
	// RefusedClientCert: a client certificate no CA of the listener (nor
	// of another network) signed.
	RefusedClientCert = "client_cert"
	// RefusedTLS: any other failed handshake (no client certificate, not
	// TLS, no common version, too slow).
	RefusedTLS = "tls"
)

// ErrWrongNetwork is the handshake error of a client certificate that
// does not carry the URI naming the listener's network.
var ErrWrongNetwork = errors.New("ingest: client certificate does not name this listener's network")

// TLSFiles are the PEM files of the listeners' TLS. Cert and Key turn TLS
// on; ClientCA requires client certificates its CAs signed; NetworkCAs
// give a network's listener its own CAs instead; ClientURI, a pattern with
// {network}, requires each client certificate to carry, as a URI SAN, the
// pattern with its listener's network. Prefix names the variables in
// errors (prefix+"_CERT", "_KEY", "_CLIENT_CA", "_CLIENT_CAS").
type TLSFiles struct {
	Prefix              string
	Cert, Key, ClientCA string
	NetworkCAs          NetworkFiles
	ClientURI           string
}

// CheckURI adds to ps a problem when the client URI pattern is unusable,
// under the variable name.
func (f TLSFiles) CheckURI(ps *service.Problems, name string) {
	if f.ClientURI == "" {
		return
	}
	if strings.Count(f.ClientURI, NetworkPlaceholder) != 1 {
		ps.Add(name, "%q: want one %s, e.g. urn:hinscore:network:%s", f.ClientURI, NetworkPlaceholder, NetworkPlaceholder)
	}
	if f.ClientCA == "" && len(f.NetworkCAs) == 0 {
		ps.Add(name, "a client URI needs client CAs (%s_CLIENT_CA or %s_CLIENT_CAS)", f.Prefix, f.Prefix)
	}
}

// BindsNetworks adds to ps, under name, a problem for each network whose
// listener would accept another network's client certificate or none:
// each needs client CAs, and either its own or the client URI.
func (f TLSFiles) BindsNetworks(ps *service.Problems, name string, networks []string) {
	if f.Cert == "" {
		ps.Add(name, "TLS is off (%s_CERT, %s_KEY): every listener needs TLS with client certificates", f.Prefix, f.Prefix)
		return
	}
	for _, n := range networks {
		_, own := f.NetworkCAs[n]
		switch {
		case !own && f.ClientCA == "":
			ps.Add(name, "network %s: no client CA (%s_CLIENT_CA or %s_CLIENT_CAS)", n, f.Prefix, f.Prefix)
		case !own && f.ClientURI == "":
			ps.Add(name, "network %s: its client CA is shared, so another network's certificate would pass; give it its own (%s_CLIENT_CAS) or bind certificates by %s_CLIENT_URI",
				n, f.Prefix, f.Prefix)
		}
	}
}

// TLSSet is the server TLS of every network's listener, read again from
// its files whenever one of them changes (its modification time or size,
// looked at on each handshake), so that a renewed certificate or a
// rotated CA takes effect for the next connection without a restart.
// Files that no longer load leave the previous ones in force (OnReload
// hears of it). Connections already open stay as they are.
type TLSSet struct {
	files TLSFiles
	// OnReload, when set, hears of every reload: err nil when the new
	// files are in force. Set it before the listeners start.
	OnReload func(err error)

	mu     sync.Mutex
	cur    *tlsState
	failed string // the stamps of files that failed to load, not retried until they change
}

// tlsState is one loading of the files.
type tlsState struct {
	stamps    string // every file's modification time and size
	cert      tls.Certificate
	all       *x509.CertPool            // nil: no client certificates unless the network has its own
	byNetwork map[string]*x509.CertPool // the networks with CAs of their own
}

// NewTLSSet loads files: nil when files.Cert is empty (plain TCP).
func NewTLSSet(files TLSFiles) (*TLSSet, error) {
	if files.Cert == "" {
		return nil, nil
	}
	s := &TLSSet{files: files}
	st, err := s.load(s.stamps())
	if err != nil {
		return nil, err
	}
	s.cur = st
	return s, nil
}

// ServerTLS is the TLS of one listener from PEM files: nil when cert is
// empty (plain TCP); with clientCA, mutual TLS. prefix names the
// variables in errors.
func ServerTLS(cert, key, clientCA, prefix string) (*tls.Config, error) {
	s, err := NewTLSSet(TLSFiles{Prefix: prefix, Cert: cert, Key: key, ClientCA: clientCA})
	if err != nil || s == nil {
		return nil, err
	}
	return s.For(""), nil
}

// For returns the TLS configuration of network's listener; nil (plain
// TCP) for a nil set.
func (s *TLSSet) For(network string) *tls.Config {
	if s == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current().config(network, s.files.ClientURI), nil
		},
	}
}

// Mutual reports whether network's listener requires client certificates.
func (s *TLSSet) Mutual(network string) bool {
	if s == nil {
		return false
	}
	return s.current().pool(network) != nil
}

// config is network's TLS for one handshake. Session tickets are off: a
// resumed session would skip the client certificate's verification
// against the CAs in force now.
func (st *tlsState) config(network, uriPattern string) *tls.Config {
	tc := &tls.Config{Certificates: []tls.Certificate{st.cert}, MinVersion: tls.VersionTLS12, SessionTicketsDisabled: true}
	if pool := st.pool(network); pool != nil {
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		if uriPattern != "" {
			want := strings.Replace(uriPattern, NetworkPlaceholder, network, 1)
			tc.VerifyConnection = func(cs tls.ConnectionState) error { return requireURI(cs, want) }
		}
	}
	return tc
}

func (st *tlsState) pool(network string) *x509.CertPool {
	if p, ok := st.byNetwork[network]; ok {
		return p
	}
	return st.all
}

// requireURI refuses a verified client certificate without the URI want.
func requireURI(cs tls.ConnectionState, want string) error {
	if len(cs.PeerCertificates) == 0 {
		return ErrWrongNetwork
	}
	for _, u := range cs.PeerCertificates[0].URIs {
		if u.String() == want {
			return nil
		}
	}
	return fmt.Errorf("%w: want URI %s, the certificate names %s", ErrWrongNetwork, want, certURIs(cs.PeerCertificates[0]))
}

// current is the state in force, loaded again when a file changed.
func (s *TLSSet) current() *tlsState {
	stamps := s.stamps()
	s.mu.Lock()
	defer s.mu.Unlock()
	if stamps == s.cur.stamps || stamps == s.failed {
		return s.cur
	}
	st, err := s.load(stamps)
	if err != nil {
		s.failed = stamps
	} else {
		s.cur, s.failed = st, ""
	}
	if s.OnReload != nil {
		s.OnReload(err)
	}
	return s.cur
}

// paths are the files, in a fixed order.
func (s *TLSSet) paths() []string {
	out := []string{s.files.Cert, s.files.Key, s.files.ClientCA}
	for _, n := range slices.Sorted(maps.Keys(s.files.NetworkCAs)) {
		out = append(out, s.files.NetworkCAs[n])
	}
	return out
}

// stamps are the files' modification times and sizes (a missing file
// stamps as missing: it fails the load that follows).
func (s *TLSSet) stamps() string {
	var b strings.Builder
	for _, p := range s.paths() {
		if p == "" {
			b.WriteString("-;")
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		} else {
			b.WriteString("missing;")
		}
	}
	return b.String()
}

// load reads every file.
func (s *TLSSet) load(stamps string) (*tlsState, error) {
	f := s.files
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("%s_CERT/KEY: %w", f.Prefix, err)
	}
	st := &tlsState{stamps: stamps, cert: pair, byNetwork: map[string]*x509.CertPool{}}
	if f.ClientCA != "" {
		if st.all, err = loadPool(f.ClientCA, f.Prefix+"_CLIENT_CA"); err != nil {
			return nil, err
		}
	}
	for network, caFile := range f.NetworkCAs {
		if st.byNetwork[network], err = loadPool(caFile, f.Prefix+"_CLIENT_CAS "+network); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// loadPool reads the CAs of the PEM file caFile; name is the variable it
// came from.
func loadPool(caFile, name string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", name, caFile)
	}
	return pool, nil
}

// Refusal says why a handshake on network's listener failed with err: the
// reason (RefusedWrongNetwork, RefusedClientCert, RefusedTLS) and, for a
// certificate, who it names (its subject and URIs) and, when another
// network's CAs signed it, that network.
func (s *TLSSet) Refusal(network string, err error) (reason, peer, owner string) {
	if errors.Is(err, ErrWrongNetwork) {
		return RefusedWrongNetwork, "", ""
	}
	var ve *tls.CertificateVerificationError
	if !errors.As(err, &ve) || len(ve.UnverifiedCertificates) == 0 {
		return RefusedTLS, "", "" // no certificate at all, not TLS, no common version, too slow
	}
	leaf := ve.UnverifiedCertificates[0]
	peer = leaf.Subject.String() + " " + certURIs(leaf)
	if s != nil {
		if owner = s.current().signedFor(network, ve.UnverifiedCertificates); owner != "" {
			return RefusedWrongNetwork, peer, owner
		}
	}
	return RefusedClientCert, peer, ""
}

// LogRefusal logs a failed handshake on network's listener (log carries
// the connection's fields) and returns the reason to count it under: a
// certificate of another network is a warning naming both networks.
func (s *TLSSet) LogRefusal(log zerolog.Logger, network string, err error) (reason string) {
	reason, peer, owner := s.Refusal(network, err)
	ev := log.Warn().Err(err).Str("reason", reason)
	if peer != "" {
		ev = ev.Str("client_certificate", peer)
	}
	if owner != "" {
		ev = ev.Str("certificate_network", owner)
	}
	switch reason {
	case RefusedWrongNetwork:
		ev.Msg("TLS handshake refused: a client certificate of another network")
	default:
		ev.Msg("TLS handshake failed")
	}
	return reason
}

// LogReloads makes the set log its reloads on log.
func (s *TLSSet) LogReloads(log zerolog.Logger) {
	if s == nil {
		return
	}
	s.OnReload = func(err error) {
		if err != nil {
			log.Error().Err(err).Msg("TLS files changed but do not load: the previous ones stay in force")
			return
		}
		log.Info().Msg("TLS files reloaded: new connections use them")
	}
}

// signedFor is a network other than network whose own CAs verify the
// chain, "" when none does.
func (st *tlsState) signedFor(network string, chain []*x509.Certificate) string {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, other := range slices.Sorted(maps.Keys(st.byNetwork)) {
		if other == network {
			continue
		}
		opts := x509.VerifyOptions{Roots: st.byNetwork[other], Intermediates: inter, CurrentTime: time.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if _, err := chain[0].Verify(opts); err == nil {
			return other
		}
	}
	return ""
}

func certURIs(c *x509.Certificate) string {
	if len(c.URIs) == 0 {
		return "[no URI]"
	}
	us := make([]string, len(c.URIs))
	for i, u := range c.URIs {
		us[i] = u.String()
	}
	return "[" + strings.Join(us, " ") + "]"
}

// NetworkFiles maps networks to files, read from
// "network=path,network=path".
type NetworkFiles map[string]string

// UnmarshalText reads "network=path,network=path": each network a valid
// subject token, listed once.
func (m *NetworkFiles) UnmarshalText(b []byte) error {
	out := NetworkFiles{}
	for _, part := range strings.Split(string(b), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		network, path, ok := strings.Cut(part, "=")
		if !ok || path == "" {
			return fmt.Errorf("%q: want network=path", part)
		}
		if err := bus.ValidNetwork(network); err != nil {
			return err
		}
		if _, dup := out[network]; dup {
			return fmt.Errorf("network %q listed twice", network)
		}
		out[network] = path
	}
	*m = out
	return nil
}

// RequireIdentity adds to ps what production refuses of the stream
// listeners ls: one that is not TLS, takes no client certificate, or would
// take another network's (TLSFiles.BindsNetworks), named by the variables
// of l's prefix.
func (l Limits) RequireIdentity(ps *service.Problems, ls []Listener) {
	networks := make([]string, len(ls))
	for i, x := range ls {
		networks[i] = x.Network
	}
	l.TLSFiles().BindsNetworks(ps, l.Prefix+"_LISTENERS", networks)
}
