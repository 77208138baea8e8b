// Package fhiringest receives FHIR R4 over HTTP under /fhir/{network}/,
// authenticates each network by its bearer tokens, stores every resource and
// its ExchangeEvents (publisher.store: a body of one event travels in it, a
// body of several is kept once in RAW), and only then answers 200/201. Bad
// input gets 4xx with an OperationOutcome naming the element, and its bytes
// go to the DLQ. The mapping itself is package fhirmap.
package fhiringest

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/dlq"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/fhir-ingest/fhirmap"
	"github.com/hinscore/hinscore/services/lib/service"
	soaptoevent "github.com/hinscore/hinscore/services/lib/soap/toevent"
)

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = errors.New("fhiringest: server shut down")

// errTooLarge reports a body over MaxBodyBytes (after gunzip).
var errTooLarge = errors.New("fhiringest: body too large")

// Media types accepted.
const (
	mediaFHIRJSON = "application/fhir+json"
	mediaJSON     = "application/json"
	mediaNDJSON   = "application/fhir+ndjson"
)

// HeaderCorrelationID links a batch/transaction to its response, and an
// OperationOutcome to the request it answers.
const HeaderCorrelationID = "X-Correlation-ID"

// Server is the FHIR ingest component.
type Server struct {
	cfg      Config
	js       jetstream.JetStream
	log      zerolog.Logger
	clock    service.Clock
	mapper   fhirmap.Mapper            // the built-in classification table
	soap     soaptoevent.Mapper        // SOAP copies of cross-community transactions
	mappers  map[string]fhirmap.Mapper // networks with rows of their own
	m        *metrics
	pub      *publisher
	tokenNet map[[sha256.Size]byte]string // token hash → its network
	nets     map[string]*netState         // every network with a token
	handler  http.Handler

	mu      sync.Mutex
	started bool
	closed  bool
	ln      net.Listener
	srv     *http.Server
	served  chan struct{}
}

// New returns a server for cfg publishing through deps.JetStream, its
// metrics on deps.Metrics (nil: registered nowhere), its time from
// deps.Clock (nil: the wall clock).
func New(cfg Config, deps service.Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fhiringest.New: %w", err)
	}
	js, log, clock := deps.JetStream, deps.Log, deps.Clock
	if js == nil {
		return nil, fmt.Errorf("fhiringest.New: nil JetStream")
	}
	if clock == nil {
		clock = service.SystemClock{}
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, fmt.Errorf("fhiringest.New: %w", err)
	}
	if cfg.PatientTokens.IsDev() {
		log.Warn().Msg("HINSCORE_PATIENT_KEY unset: patient tokens use the public development key")
	}
	if cfg.RawKeys.IsDev() {
		log.Warn().Msg("HINSCORE_RAW_KEYS unset: the bodies kept in EVENTS are sealed with the public development key")
	}
	s := &Server{
		cfg:      cfg,
		js:       js,
		log:      log,
		clock:    clock,
		mapper:   fhirmap.NewMapper(cfg.PatientKey, cfg.PatientKeyID),
		soap:     soaptoevent.NewMapper(cfg.PatientKey, cfg.PatientKeyID),
		m:        m,
		pub:      &publisher{js: js, keys: cfg.RawKeys, partitions: cfg.PartitionCount, timeout: defaultPublishTimeout},
		mappers:  map[string]fhirmap.Mapper{},
		tokenNet: map[[sha256.Size]byte]string{},
		nets:     map[string]*netState{},
		served:   make(chan struct{}),
	}
	for network := range cfg.Classification {
		s.mappers[network] = cfg.mapper(network, s.mapper)
	}
	for network, hashes := range cfg.Tokens {
		for _, h := range hashes {
			var sum [sha256.Size]byte
			if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
				return nil, fmt.Errorf("fhiringest.New: token hash of %s: %w", network, err) // Validate checked it
			}
			s.tokenNet[sum] = network
		}
		s.nets[network] = s.newNetState(network)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/{network}/metadata", s.serveMetadata)
	mux.HandleFunc("POST /fhir/{network}/{$}", s.serveIngest)
	mux.HandleFunc("POST /fhir/{network}/{type}", s.serveIngest)
	mux.HandleFunc("PUT /fhir/{network}/{type}/{id}", s.serveIngest)
	mux.HandleFunc("POST /soap", s.serveSOAP)
	mux.HandleFunc("POST /soap/{network}", s.serveSOAP)
	mux.HandleFunc("POST /fhir/{network}/soap", s.serveSOAP)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeFHIR(w, http.StatusNotFound, outcomeOf(errorIssue("not-supported",
			r.Method+" "+r.URL.Path+" is not served: see GET /fhir/{network}/metadata", "")))
	})
	s.handler = mux
	return s, nil
}

// netState is what the ingest of one network uses on every request,
// resolved once: WithLabelValues hashes its labels and takes a lock on each
// call.
type netState struct {
	mapper                                       fhirmap.Mapper
	soap                                         soaptoevent.Mapper // SOAP copies: the network's own rows over the built-in table
	received, accepted, duplicate, events, bytes prometheus.Counter
	ok, created                                  prometheus.Counter // requests_total with code 200, 201
	latency                                      prometheus.Observer
}

func (s *Server) newNetState(network string) *netState {
	return &netState{
		mapper:    s.mapperOf(network),
		soap:      s.cfg.soapMapper(network, s.soap),
		received:  s.m.received.WithLabelValues(network),
		accepted:  s.m.accepted.WithLabelValues(network),
		duplicate: s.m.duplicate.WithLabelValues(network),
		events:    s.m.events.WithLabelValues(network),
		bytes:     s.m.bytes.WithLabelValues(network),
		ok:        s.m.requests.WithLabelValues(network, "200"),
		created:   s.m.requests.WithLabelValues(network, "201"),
		latency:   s.m.latency.WithLabelValues(network),
	}
}

// mapperOf is the mapper of network: its own classification rows over the
// built-in table, or the built-in table.
func (s *Server) mapperOf(network string) fhirmap.Mapper {
	if m, ok := s.mappers[network]; ok {
		return m
	}
	return s.mapper
}

// Handler serves the FHIR endpoints (tests, or mounting in another server).
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on cfg.Addr and returns once listening.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("fhiringest.Start: %w", ErrClosed)
	}
	if s.started {
		return nil
	}
	// The key pair is loaded here, not in the serving goroutine, so that a
	// bad file fails Start instead of a server that listens and never serves.
	var tlsConfig *tls.Config
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("fhiringest.Start: TLS key pair %s, %s: %w", s.cfg.TLSCert, s.cfg.TLSKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("fhiringest.Start %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.srv = newHTTPServer(s.handler, tlsConfig, s.log)
	s.started = true
	go func() {
		defer close(s.served)
		var err error
		if tlsConfig != nil {
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("FHIR server stopped")
		}
	}()
	s.log.Info().Str("addr", ln.Addr().String()).Bool("tls", s.cfg.TLSCert != "").Msg("FHIR listening")
	return nil
}

// newHTTPServer is the http.Server of every FHIR listener (and of the
// benchmark's no-op ceiling, so that both are held to the same settings).
func newHTTPServer(h http.Handler, tlsConfig *tls.Config, log zerolog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // an NDJSON feed may stream for a while
		IdleTimeout:       5 * time.Minute,
		// TLS handshake failures and the like go to the service log.
		ErrorLog: stdlog.New(log.With().Str("component", "http").Logger(), "", 0),
	}
}

// Addr is the address the server listens on ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Ready reports whether the server listens and JetStream answers.
func (s *Server) Ready(ctx context.Context) error {
	s.mu.Lock()
	started, closed := s.started, s.closed
	s.mu.Unlock()
	if !started || closed {
		return errors.New("fhiringest: not listening")
	}
	if _, err := s.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("fhiringest.Ready: %w", err)
	}
	return nil
}

// Shutdown stops accepting and lets the requests in progress finish (their
// PubAcks and replies); when ctx ends first it closes the connections.
// Idempotent, and safe before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	wasClosed := s.closed
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if wasClosed {
		select {
		case <-s.served:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("fhiringest.Shutdown: %w", ctx.Err())
		}
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("fhiringest.Shutdown: %w", err)
	}
	<-s.served
	return err
}

// tokenOwner is the network whose bearer token the request carries. The
// token is compared by its hash: the configuration holds nothing else.
func (s *Server) tokenOwner(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	owner, ok := s.tokenNet[sha256.Sum256([]byte(strings.TrimSpace(token)))]
	return owner, ok
}

// authenticate returns the network whose token the request carries and
// the status to refuse with, or 0.
func (s *Server) authenticate(r *http.Request, network string) (owner string, status int) {
	owner, ok := s.tokenOwner(r)
	if !ok {
		return "", http.StatusUnauthorized
	}
	if owner != network {
		return owner, http.StatusForbidden
	}
	return owner, 0
}

// refuseOtherNetwork counts and logs a request for network's URL carrying
// a valid token of the network owner.
func (s *Server) refuseOtherNetwork(r *http.Request, network, owner string) {
	s.m.rejected.WithLabelValues("-", reasonForbidden).Inc()
	s.log.Warn().Str("network", network).Str("token_network", owner).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).
		Msg("request refused: a token of another network")
}

// retryAfter is the Retry-After of every 503 (nothing stored, send it
// again), in seconds: a bus outage is mostly a NATS node restarting, and the
// Msg-Ids make a retry that comes too early harmless.
const retryAfter = "5"

// reply records the request's metrics and writes the reply.
func (s *Server) reply(w http.ResponseWriter, label string, start time.Time, status int, v any) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	s.m.requests.WithLabelValues(label, strconv.Itoa(status)).Inc()
	if label != "-" {
		s.m.latency.WithLabelValues(label).Observe(s.clock.Now().Sub(start).Seconds())
	}
	writeFHIR(w, status, v)
}

func (s *Server) serveIngest(w http.ResponseWriter, r *http.Request) {
	start := s.clock.Now()
	network := r.PathValue("network")
	if !s.admit(w, r, network, start) {
		return
	}
	media, err := mediaType(r.Header.Get("Content-Type"))
	ndjson := media == mediaNDJSON || media == "application/ndjson" || media == "application/x-ndjson"
	if err != nil || (media != mediaFHIRJSON && media != mediaJSON && !ndjson) {
		s.m.rejected.WithLabelValues(network, reasonMediaType).Inc()
		s.reply(w, network, start, http.StatusUnsupportedMediaType, outcomeOf(errorIssue("not-supported",
			fmt.Sprintf("Content-Type %q: send application/fhir+json, application/json or (POST /fhir/%s/) application/fhir+ndjson", r.Header.Get("Content-Type"), network), "")))
		return
	}
	limit := s.cfg.MaxBodyBytes
	if ndjson {
		limit = maxNDJSONBytes
	}
	body, err := s.bodyReader(w, r, limit)
	if err != nil {
		s.m.rejected.WithLabelValues(network, reasonMediaType).Inc()
		s.reply(w, network, start, http.StatusUnsupportedMediaType, outcomeOf(errorIssue("not-supported", err.Error(), "")))
		return
	}
	defer body.Close()
	if ndjson {
		if r.Method != http.MethodPost || r.PathValue("type") != "" {
			s.m.rejected.WithLabelValues(network, reasonMediaType).Inc()
			s.reply(w, network, start, http.StatusUnsupportedMediaType, outcomeOf(errorIssue("not-supported",
				"NDJSON is accepted by POST /fhir/"+network+"/ only", "")))
			return
		}
		s.serveNDJSON(w, r, network, start, body)
		return
	}
	size := r.ContentLength
	if r.Header.Get("Content-Encoding") != "" {
		size = -1 // the decoded size is not the one on the wire
	}
	data, err := readAll(body, s.cfg.MaxBodyBytes, size)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			s.m.rejected.WithLabelValues(network, reasonTooLarge).Inc()
			// The bytes are not kept: a dead letter this big would not fit
			// the bus; the reason says who sent what.
			if s.deadLetter(r.Context(), network, r.RemoteAddr, reasonTooLarge, err.Error(), nil) != nil {
				s.reply(w, network, start, http.StatusServiceUnavailable, notStored())
				return
			}
			s.reply(w, network, start, http.StatusRequestEntityTooLarge, outcomeOf(errorIssue("too-costly", err.Error(), "")))
			return
		}
		s.reply(w, network, start, http.StatusBadRequest, outcomeOf(errorIssue("structure", "reading the body: "+err.Error(), "")))
		return
	}
	s.ingestBody(w, r, network, start, data)
}

// admit answers a request that may not post here (no or a wrong network's
// token, a PUT of a resource that is not updated in place) and says whether
// it may go on.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, network string, start time.Time) bool {
	switch owner, status := s.authenticate(r, network); status {
	case http.StatusUnauthorized:
		s.m.rejected.WithLabelValues("-", reasonAuth).Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="hinscore", error="invalid_token"`)
		s.reply(w, "-", start, http.StatusUnauthorized, outcomeOf(errorIssue("login", "missing or unknown bearer token", "")))
		return false
	case http.StatusForbidden:
		s.refuseOtherNetwork(r, network, owner)
		s.reply(w, "-", start, http.StatusForbidden, outcomeOf(errorIssue("forbidden", "this token does not belong to network "+strconvQuote(network), "")))
		return false
	}
	if r.Method == http.MethodPut && !updatable(r.PathValue("type")) {
		s.m.rejected.WithLabelValues(network, reasonMethod).Inc()
		w.Header().Set("Allow", "") // nothing is served at this URL
		s.reply(w, network, start, http.StatusMethodNotAllowed, outcomeOf(errorIssue("not-supported",
			fmt.Sprintf("PUT of a %s is not accepted: PUT serves Task, AuditEvent, OperationOutcome and MessageHeader; POST a Bundle to /fhir/%s/", r.PathValue("type"), network), "")))
		return false
	}
	return true
}

// ingestBody maps one JSON body, stores its events and answers: 201/200
// once stored, an OperationOutcome for what does not map, 503 when the
// store failed.
func (s *Server) ingestBody(w http.ResponseWriter, r *http.Request, network string, start time.Time, data []byte) {
	ns := s.netOf(network)
	ns.received.Inc()
	ns.bytes.Add(float64(len(data)))
	res, err := ns.mapper.Map(fhirmap.Input{Network: network, Body: data, CorrelationID: r.Header.Get(HeaderCorrelationID), Ingest: start})
	if err == nil {
		err = checkURL(r, res)
	}
	if err != nil {
		s.refuse(w, r, network, start, data, err)
		return
	}
	dup, err := s.pub.store(r.Context(), network, r.RemoteAddr, formatFHIR, data, res.Identity, res.Events)
	if errors.Is(err, ErrConflict) {
		s.conflict(w, r, network, start, data, res.Identity)
		return
	}
	if err != nil {
		s.m.rejected.WithLabelValues(network, reasonPublish).Inc()
		s.log.Warn().Err(err).Str("network", network).Msg("publish failed: replying 503")
		s.reply(w, network, start, http.StatusServiceUnavailable, notStored())
		return
	}
	ns.accepted.Inc()
	ns.events.Add(float64(len(res.Events)))
	s.m.flagged(network, countFlags(nil, res.Events))
	status := http.StatusOK
	if dup {
		ns.duplicate.Inc()
	} else if r.Method == http.MethodPost {
		status = http.StatusCreated
	}
	if res.ID != "" {
		loc := "/fhir/" + network + "/" + res.ResourceType + "/" + res.ID
		if res.VersionID != "" {
			loc += "/_history/" + res.VersionID
		}
		h := w.Header()
		h["Location"] = []string{loc}
		h["Content-Location"] = []string{loc}
	}
	counter := ns.ok
	if status == http.StatusCreated {
		counter = ns.created
	}
	counter.Inc()
	ns.latency.Observe(s.clock.Now().Sub(start).Seconds())
	writeFHIRBytes(w, status, storedReply(dup, len(res.Events)))
}

// netOf is the state of network, which authenticate found configured.
func (s *Server) netOf(network string) *netState {
	if ns, ok := s.nets[network]; ok {
		return ns
	}
	return s.newNetState(network)
}

// mediaType is the media type of a Content-Type header, lower case and
// without parameters; the exact types feeds send skip the parser.
func mediaType(contentType string) (string, error) {
	switch contentType {
	case mediaFHIRJSON, mediaJSON, mediaNDJSON:
		return contentType, nil
	}
	media, _, err := mime.ParseMediaType(contentType)
	return media, err
}

// checkURL refuses a resource posted to another type's endpoint, or PUT
// under another id.
func checkURL(r *http.Request, res fhirmap.Result) error {
	if typ := r.PathValue("type"); typ != "" && typ != res.ResourceType {
		return &fhirmap.Error{Path: "resourceType", IssueCode: "invalid",
			Msg: fmt.Sprintf("%q posted to the %s endpoint", res.ResourceType, typ), Err: errWrongType}
	}
	if id := r.PathValue("id"); r.Method == http.MethodPut && id != res.ID {
		return &fhirmap.Error{Path: res.ResourceType + ".id", IssueCode: "invalid",
			Msg: fmt.Sprintf("%q in the body, %q in the URL", res.ID, id), Err: errWrongType}
	}
	return nil
}

var errWrongType = errors.New("fhiringest: resource does not match the URL")

// updatable are the types PUT serves (the CapabilityStatement's update
// interactions): a Bundle is a whole exchange posted once, not a version of
// one resource.
func updatable(typ string) bool {
	switch typ {
	case "Task", "AuditEvent", "OperationOutcome", "MessageHeader":
		return true
	}
	return false
}

// refuse dead-letters the body and answers 400 (unreadable, or not what
// the URL names) or 422 (readable but unusable).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, network string, start time.Time, data []byte, err error) {
	status, reason := http.StatusUnprocessableEntity, reasonInvalid
	switch {
	case errors.Is(err, fhirmap.ErrSyntax):
		status, reason = http.StatusBadRequest, reasonSyntax
	case errors.Is(err, errWrongType):
		status, reason = http.StatusBadRequest, reasonWrongType
	case errors.Is(err, fhirmap.ErrNotExchange):
		reason = reasonNotExchange
	}
	s.m.rejected.WithLabelValues(network, reason).Inc()
	var fe *fhirmap.Error
	issue := errorIssue("invalid", err.Error(), "")
	if errors.As(err, &fe) {
		issue = errorIssue(fe.IssueCode, fe.Msg, fe.Path)
	}
	if s.deadLetter(r.Context(), network, r.RemoteAddr, reason, err.Error(), data) != nil {
		s.reply(w, network, start, http.StatusServiceUnavailable, notStored())
		return
	}
	s.reply(w, network, start, status, outcomeOf(issue))
}

// conflict answers a version received before with other content: 409 with
// an OperationOutcome, the bytes in the DLQ.
func (s *Server) conflict(w http.ResponseWriter, r *http.Request, network string, start time.Time, data []byte, identity string) {
	s.m.rejected.WithLabelValues(network, reasonConflict).Inc()
	msg := identity + " was received before with other content: a version is immutable, send the change as a new version"
	if s.deadLetter(r.Context(), network, r.RemoteAddr, reasonConflict, msg, data) != nil {
		s.reply(w, network, start, http.StatusServiceUnavailable, notStored())
		return
	}
	s.reply(w, network, start, http.StatusConflict, outcomeOf(errorIssue("conflict", msg, "")))
}

func notStored() OperationOutcome {
	return outcomeOf(OutcomeIssue{Severity: "error", Code: "transient", Diagnostics: "not stored: send it again"})
}

func (s *Server) deadLetter(ctx context.Context, network, remote, reason, detail string, data []byte) error {
	return s.deadLetterFormat(ctx, network, remote, formatFHIR, reason, detail, data)
}

// deadLetterFormat stores rejected bytes of a format (fhir, soap) in the DLQ.
func (s *Server) deadLetterFormat(ctx context.Context, network, remote, format, reason, detail string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.pub.timeout)
	defer cancel()
	err := dlq.Publish(ctx, s.js, dlq.DeadLetter{
		Stage: stageFHIRIngest, Network: network, Format: format, Remote: remote,
		Reason: reason + ": " + detail, Data: data,
	})
	if err != nil {
		s.log.Error().Err(err).Str("network", network).Str("reason", reason).Msg("dead letter not stored")
	}
	return err
}

// bodyReader undoes the Content-Encoding and bounds the bytes read off the
// wire at limit (the decoded size is bounded by the readers of the body).
func (s *Server) bodyReader(w http.ResponseWriter, r *http.Request, limit int64) (io.ReadCloser, error) {
	raw := http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, raw}, nil
	default:
		return nil, fmt.Errorf("Content-Encoding %q: send gzip or none", enc)
	}
}

// maxNDJSONBytes bounds one NDJSON request (each line is bounded by
// MaxBodyBytes): a bulk feed is large, but not endless.
const maxNDJSONBytes = 4 << 30

// readAll reads at most limit bytes; size, when known (>= 0), is what the
// body says it holds, so that the buffer is allocated once.
func readAll(r io.Reader, limit, size int64) ([]byte, error) {
	r = io.LimitReader(r, limit+1)
	n := int64(512)
	if size >= 0 && size <= limit {
		n = size + 1 // +1: EOF is seen without growing
	}
	data := make([]byte, 0, n)
	var err error
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		var m int
		m, err = r.Read(data[len(data):cap(data)])
		data = data[:len(data)+m]
		if err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, limit)
	}
	if err != nil {
		return nil, err
	}
	return data, nil
}

func strconvQuote(s string) string { return strconv.Quote(s) }
