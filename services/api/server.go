// Package api is hinscore's investigator and operator access: a JSON API
// over ClickHouse and the original messages sealed in EVENTS or kept in RAW,
// every access to those recorded in AUDIT (chains, searches, patient journeys, offenders,
// scorecards, raw messages and evidence bundles), server-rendered HTML views
// of the same data, and a command-line client of the API. Access is by API
// token with a role; every raw access is audited.
package api

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/service"
)

//go:embed openapi.json
var openAPIDoc []byte

// Search page sizes.
const (
	defaultSearchLimit = 50
	maxSearchLimit     = 500
)

// Server is the API and web server. Start, Shutdown (idempotent, safe
// before Start) and Ready make it a service.Component.
type Server struct {
	cfg     Config
	store   *store
	conn    driver.Conn
	js      jetstream.JetStream
	log     zerolog.Logger
	clock   service.Clock
	metrics *metrics
	views   *views
	handler http.Handler
	// apiRoutes are the "METHOD /path" patterns of the JSON API (what
	// openapi.json must document), recorded by routes.
	apiRoutes []string

	guard    *guard    // failed logins and unknown tokens, per remote address
	sessions *sessions // the views' logins; nil without JetStream (Start)

	mu       sync.Mutex
	buckets  map[string]*tokenBucket
	srv      *http.Server
	ln       net.Listener
	audit    *auditLog
	started  bool
	stopped  bool
	draining bool
	serveErr chan error
}

// New builds a server over deps.ClickHouse. deps.JetStream may be nil:
// the raw and evidence endpoints then answer 503. deps.Metrics may be nil
// (registered nowhere), deps.Clock too (the wall clock). The audit log is
// opened at Start.
func New(cfg Config, deps service.Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api.New: %w", err)
	}
	conn, js, log, reg, clock := deps.ClickHouse, deps.JetStream, deps.Log, deps.Metrics, deps.Clock
	if conn == nil {
		return nil, errors.New("api.New: no ClickHouse connection")
	}
	if clock == nil {
		clock = service.SystemClock{}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("api.New: %w", err)
	}
	v, err := newViews()
	if err != nil {
		return nil, fmt.Errorf("api.New: %w", err)
	}
	if cfg.RawKeys.IsDev() {
		log.Warn().Msg("HINSCORE_RAW_KEYS unset: original bytes in EVENTS are opened with the public development key")
	}
	s := &Server{cfg: cfg, store: &store{conn: conn}, conn: conn, js: js, log: log, clock: clock,
		metrics: m, views: v, buckets: map[string]*tokenBucket{}, guard: newGuard(cfg.AuthFailures.limit())}
	s.handler = s.routes()
	return s, nil
}

// Handler serves the API and the views (what Start listens with).
func (s *Server) Handler() http.Handler { return s.handler }

// Start opens the audit log and listens on Addr.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return nil
	}
	if s.js != nil {
		sess, err := openSessions(ctx, s.js, s.cfg.StreamReplicas)
		if err != nil {
			return fmt.Errorf("api.Start: %w", err)
		}
		s.sessions = sess
	}
	a, err := openAuditLog(s.cfg.AuditLog)
	if err != nil {
		return fmt.Errorf("api.Start: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		_ = a.close()
		return fmt.Errorf("api.Start: listen %s: %w", s.cfg.Addr, err)
	}
	s.audit, s.ln = a, ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	s.serveErr = make(chan error, 1)
	go func(srv *http.Server) {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}(s.srv)
	s.started = true
	s.log.Info().Str("addr", ln.Addr().String()).Str("audit_log", s.cfg.AuditLog).Int("tokens", len(s.cfg.Tokens)).Msg("api listening")
	return nil
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

// Draining makes Ready fail before the server stops.
func (s *Server) Draining() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

// Ready reports whether the server takes traffic: listening, not shutting
// down, ClickHouse answering.
func (s *Server) Ready(ctx context.Context) error {
	s.mu.Lock()
	ok := s.started && !s.stopped && !s.draining
	s.mu.Unlock()
	if !ok {
		return errors.New("api: not serving")
	}
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("api: clickhouse: %w", err)
	}
	return nil
}

// Shutdown lets requests in flight finish until ctx ends, then closes the
// audit log. Idempotent, safe before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped || !s.started {
		s.stopped = true
		s.mu.Unlock()
		return nil
	}
	s.stopped, s.draining = true, true
	srv, audit, done := s.srv, s.audit, s.serveErr
	s.mu.Unlock()
	err := srv.Shutdown(ctx)
	if err == nil {
		err = <-done
	}
	return errors.Join(err, audit.close())
}

// route is one endpoint: who may call it is decided in the handler, after
// authentication (which every route but /openapi.json and the login page
// requires).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern, name string, h func(http.ResponseWriter, *http.Request, Principal) error) {
		mux.Handle(pattern, s.instrument(name, s.authenticated(false, h)))
		s.apiRoutes = append(s.apiRoutes, pattern)
	}
	ui := func(pattern, name string, h func(http.ResponseWriter, *http.Request, Principal) error) {
		mux.Handle(pattern, s.instrument(name, s.authenticated(true, h)))
	}
	s.apiRoutes = append(s.apiRoutes, "GET /openapi.json")
	mux.Handle("GET /openapi.json", s.instrument("openapi", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPIDoc)
	})))
	api("GET /v1/chains/{id}", "chain", s.handleChain)
	api("GET /v1/chains", "chains", s.handleSearch)
	api("GET /v1/chains/{id}/raw", "raw", s.handleRaw)
	api("GET /v1/chains/{id}/evidence", "evidence", s.handleEvidence)
	api("GET /v1/case", "case", s.handleCase)
	api("GET /v1/patients/{token}/journey", "journey", s.handleJourney)
	api("GET /v1/offenders", "offenders", s.handleOffenders)
	api("GET /v1/scorecards/{network}/{period}", "scorecard", s.handleScorecard)

	mux.Handle("GET /ui/login", s.instrument("ui_login", http.HandlerFunc(s.handleLoginPage)))
	mux.Handle("POST /ui/login", s.instrument("ui_login", http.HandlerFunc(s.handleLogin)))
	mux.Handle("POST /ui/logout", s.instrument("ui_logout", http.HandlerFunc(s.handleLogout)))
	ui("GET /ui/offenders", "ui_offenders", s.handleOffendersPage)
	ui("GET /ui/chains/{id}", "ui_chain", s.handleChainPage)
	ui("GET /ui/patients/{token}", "ui_journey", s.handleJourneyPage)
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/offenders", http.StatusSeeOther))
	mux.Handle("GET /ui/{$}", http.RedirectHandler("/ui/offenders", http.StatusSeeOther))
	return mux
}

// httpError is an error with the status it answers.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func statusErr(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

var (
	errForbiddenNetwork = statusErr(http.StatusForbidden, "this token is bound to another network")
	errInvestigatorOnly = statusErr(http.StatusForbidden, "raw messages and evidence are for the investigator role only")
	errChainNotFound    = statusErr(http.StatusNotFound, "no such chain")
)

// authenticated finds the caller's token (Authorization: Bearer, or for
// the HTML views the login session's), applies its rate limit and runs h.
// An address that has spent its failures (unknown tokens, gone sessions)
// gets 429 before any token is looked at. An error from h becomes the
// response: 4xx with its message, anything else 500 with a request id
// (the detail goes to the log only).
func (s *Server) authenticated(cookie bool, h func(http.ResponseWriter, *http.Request, Principal) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, sessionID := bearer(r), ""
		if token == "" && cookie {
			if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
				sessionID = c.Value
			}
		}
		if token == "" && sessionID == "" {
			if cookie {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="hinscore"`)
			s.writeError(w, r, cookie, statusErr(http.StatusUnauthorized, "missing bearer token"))
			return
		}
		addr, now := remoteHost(r), s.clock.Now()
		if limited, wait := s.guard.blocked(addr, now); limited {
			s.metrics.authRefused.WithLabelValues("limited").Inc()
			w.Header().Set("Retry-After", retryAfter(wait))
			s.writeError(w, r, cookie, statusErr(http.StatusTooManyRequests, "too many unknown tokens from this address"))
			return
		}
		hash, p, ok := HashToken(token), Principal{}, false
		if sessionID != "" {
			sess, err := s.session(r, sessionID, now)
			if err != nil {
				s.writeError(w, r, cookie, err)
				return
			}
			hash, r = sess.TokenHash, withCSRF(r, sess.CSRF)
		}
		if p, ok = s.cfg.Tokens[hash]; !ok {
			s.refuseUnknown(w, r, cookie, addr, now, sessionID != "")
			return
		}
		if ok, wait := s.allow(hash); !ok {
			s.metrics.rateLimited.WithLabelValues(p.Name).Inc()
			w.Header().Set("Retry-After", retryAfter(wait))
			s.writeError(w, r, cookie, statusErr(http.StatusTooManyRequests, "rate limit: %g requests/s, burst %d", s.cfg.RateLimit.PerSecond, s.cfg.RateLimit.Burst))
			return
		}
		p.tokenID = hash[:12]
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, cookie, err)
		}
	})
}

// session is the live login of a session cookie; a gone one (logged out,
// expired, never made) reads as a session of no token.
func (s *Server) session(r *http.Request, id string, now time.Time) (session, error) {
	if s.sessions == nil {
		return session{}, nil
	}
	sess, err := s.sessions.get(r.Context(), id, now)
	if errors.Is(err, errNoSession) {
		return session{}, nil
	}
	return sess, err
}

// refuseUnknown answers a token or session that opens nothing, and takes
// one failure from the address's bucket. A view's gone session goes back
// to the login form, its cookie cleared.
func (s *Server) refuseUnknown(w http.ResponseWriter, r *http.Request, html bool, addr string, now time.Time, fromSession bool) {
	s.guard.fail(addr, now)
	s.metrics.authRefused.WithLabelValues("unknown_token").Inc()
	if fromSession {
		http.SetCookie(w, s.cookie(r, sessionCookie, "", "/ui/", -1))
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="hinscore", error="invalid_token"`)
	s.writeError(w, r, html, statusErr(http.StatusUnauthorized, "unknown token"))
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Server) allow(hash string) (bool, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[hash]
	if b == nil {
		b = &tokenBucket{}
		s.buckets[hash] = b
	}
	return b.take(s.clock.Now(), s.cfg.RateLimit)
}

// writeError answers an error as JSON (or an HTML page for the views).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, html bool, err error) {
	status, msg := http.StatusInternalServerError, ""
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.Is(err, ErrBadParam):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, errNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "request cancelled or timed out"
	}
	if status == http.StatusInternalServerError {
		id := requestID()
		s.log.Error().Err(err).Str("request_id", id).Str("path", r.URL.Path).Msg("api request failed")
		msg = "internal error (request id " + id + ")"
	}
	if html {
		s.views.error(w, status, csrfOf(r), msg)
		return
	}
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// onlyParams rejects any query parameter outside allowed: a misspelt
// filter must not silently widen a search.
func onlyParams(r *http.Request, allowed ...string) error {
	q := r.URL.Query()
	for k, vs := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			if len(k) > 40 {
				k = k[:40] + "…"
			}
			return badParam(strconv.Quote(k), "unknown parameter")
		}
		if len(vs) > 1 {
			return badParam(k, "given more than once")
		}
	}
	return nil
}
