package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// ReadinessCheck returns nil when its part of the service can take traffic.
type ReadinessCheck func(ctx context.Context) error

// Admin serves /metrics, /healthz and /readyz. /readyz turns false as soon
// as shutdown begins, before the components stop.
type Admin struct {
	addr     string
	registry *prometheus.Registry
	log      zerolog.Logger

	mu       sync.Mutex
	checks   map[string]ReadinessCheck
	failing  map[string]string // each failing check's last reason, logged once per change
	srv      *http.Server
	ln       net.Listener
	stopping atomic.Bool
}

// NewAdmin returns an admin server for addr ("" disables listening; the
// handler still works through Handler). An address without a host
// (":9101") listens on loopback (AdminListenAddr). The registry gets the Go
// and process collectors.
func NewAdmin(addr string, log zerolog.Logger) *Admin {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Admin{addr: AdminListenAddr(addr), registry: reg, log: log, checks: map[string]ReadinessCheck{}, failing: map[string]string{}}
}

// AdminListenAddr is where an admin address listens: one without a host
// (":9101", or a bare port "9101") on loopback, not on every interface.
// The metrics and readiness of a service are for its own host's scraper;
// a deployment whose scraper comes over the network names the address to
// listen on (deploy/k8s: 0.0.0.0 inside the pod's network namespace).
func AdminListenAddr(addr string) string {
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if _, perr := strconv.Atoi(addr); perr == nil {
			return net.JoinHostPort("127.0.0.1", addr)
		}
		return addr // Start reports it
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Registry is where the service registers its metrics.
func (a *Admin) Registry() *prometheus.Registry { return a.registry }

// AddReadiness registers a named readiness check.
func (a *Admin) AddReadiness(name string, check ReadinessCheck) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = check
}

// Addr is the address the admin server listens on, once started.
func (a *Admin) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Handler serves the admin endpoints.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.serveReady)
	return mux
}

func (a *Admin) serveReady(w http.ResponseWriter, r *http.Request) {
	if a.stopping.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	a.mu.Lock()
	checks := make(map[string]ReadinessCheck, len(a.checks))
	for k, v := range a.checks {
		checks[k] = v
	}
	a.mu.Unlock()
	ready, states := true, map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		err := checks[name](ctx)
		ready = ready && err == nil
		states[name] = "ok"
		if err != nil {
			states[name] = "failing"
		}
		a.noteCheck(name, err)
	}
	if !ready {
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not ready", Checks: states})
		return
	}
	writeJSON(w, http.StatusOK, readiness{Status: "ok", Checks: states})
}

// readiness is /readyz's answer: each check "ok" or "failing", never why.
type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// noteCheck logs why a check fails, once each time its reason changes, and
// when it recovers: /readyz answers the status only (an error may name
// hosts, users or paths, and the endpoint is unauthenticated), and a probe
// every few seconds must not flood the log.
func (a *Admin) noteCheck(name string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	last, was := a.failing[name]
	switch {
	case err == nil && was:
		delete(a.failing, name)
		a.log.Info().Str("check", name).Msg("ready again")
	case err != nil && (!was || last != err.Error()):
		a.failing[name] = err.Error()
		a.log.Warn().Err(err).Str("check", name).Msg("not ready")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Start listens on the admin address.
func (a *Admin) Start(ctx context.Context) error {
	if a.addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("admin.Start: %w", err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	a.mu.Lock()
	a.ln, a.srv = ln, srv
	a.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error().Err(err).Msg("admin server stopped")
		}
	}()
	a.log.Info().Str("addr", ln.Addr().String()).Msg("admin endpoints listening")
	return nil
}

// Draining marks the service as not ready; Shutdown calls it first.
func (a *Admin) Draining() { a.stopping.Store(true) }

// Shutdown stops the admin server.
func (a *Admin) Shutdown(ctx context.Context) error {
	a.Draining()
	a.mu.Lock()
	srv := a.srv
	a.srv = nil
	a.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin.Shutdown: %w", err)
	}
	return nil
}
