package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hinscore/hinscore/services/lib/service"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rawAccess   *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	authRefused *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hinscore_api", Name: "requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "hinscore_api", Name: "request_seconds",
			Help: "HTTP request duration by route.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route"}),
		rawAccess: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hinscore_api", Name: "raw_access_total",
			Help: "Audited raw-message accesses (raw, evidence)."}, []string{"action"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hinscore_api", Name: "rate_limited_total",
			Help: "Requests refused by a token's rate limit, by token holder."}, []string{"who"}),
		authRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hinscore_api", Name: "auth_refused_total",
			Help: "Authentication refused: unknown_token (or a gone session), bad_login, csrf, limited (the remote address spent its failures)."}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests = service.Register(reg, m.requests, &err)
	m.duration = service.Register(reg, m.duration, &err)
	m.rawAccess = service.Register(reg, m.rawAccess, &err)
	m.rateLimited = service.Register(reg, m.rateLimited, &err)
	m.authRefused = service.Register(reg, m.authRefused, &err)
	if err != nil {
		return nil, fmt.Errorf("api metrics: %w", err)
	}
	return m, nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// instrument counts and times each request under a fixed route name (never
// the path, which holds ids), and sets the headers every answer carries.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
