package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// manualClock is a clock the test moves by hand (milliseconds since the epoch).
type manualClock struct{ ms atomic.Int64 }

func (c *manualClock) Now() time.Time { return time.UnixMilli(c.ms.Load()).UTC() }

func (c *manualClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// TestRateLimitPerToken drives the real server on a real listener, over a
// migrated database, with a clock the test moves: one token spends its
// burst and gets 429 with Retry-After and the usual JSON error, another
// token is served at the same instant, and the first is served again once
// Retry-After has passed (and not a moment before).
func TestRateLimitPerToken(t *testing.T) {
	conn, _ := chtest.Database(t)
	cfg := testConfig(t)
	cfg.RateLimit = RateLimit{PerSecond: 0.5, Burst: 3}
	clock := &manualClock{}
	clock.ms.Store(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).UnixMilli())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startServer(t, ctx, cfg, conn, nil, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), clock)
	base := "http://" + srv.Addr()
	expect := func(who, path string, want int) (*http.Response, []byte) {
		t.Helper()
		resp, body := fetch(t, base, testTokens[who], path, nil)
		if resp.StatusCode != want {
			t.Fatalf("GET %s as %s at %s: %d, want %d: %s", path, who, clock.Now().Format(time.TimeOnly), resp.StatusCode, want, body)
		}
		return resp, body
	}

	// The burst: every kind of route counts against the same bucket.
	expect("analyst", "/v1/chains", http.StatusOK)
	expect("analyst", "/v1/chains?network=bayview", http.StatusOK)
	expect("analyst", "/v1/chains/00000000-0000-0000-0000-000000000000", http.StatusNotFound)
	for range 3 {
		resp, body := expect("analyst", "/v1/chains", http.StatusTooManyRequests)
		// At 0.5 requests/s an empty bucket holds a request again in 2 s.
		if got := resp.Header.Get("Retry-After"); got != "2" {
			t.Errorf("Retry-After %q, want 2", got)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("429 Content-Type %q", ct)
		}
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil || len(e) != 2 || e["status"] != float64(http.StatusTooManyRequests) || e["error"] != "rate limit: 0.5 requests/s, burst 3" {
			t.Errorf("429 body %s (%v), want the API's {error, status}", body, err)
		}
	}
	// The HTML views share the token's bucket and answer an HTML error page.
	resp, _ := expect("analyst", "/ui/offenders", http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 of a view without Retry-After")
	}
	// Refused requests took nothing from the others: another token, at
	// the same instant, has its whole burst.
	for range 3 {
		expect("operator-ns", "/v1/chains", http.StatusOK)
	}
	expect("operator-ns", "/v1/chains", http.StatusTooManyRequests)
	expect("investigator", "/v1/chains", http.StatusOK)
	// The public document is not rate limited.
	expect("analyst", "/openapi.json", http.StatusOK)

	// Just before Retry-After the bucket is still empty; at it, one request.
	clock.advance(1500 * time.Millisecond)
	expect("analyst", "/v1/chains", http.StatusTooManyRequests)
	clock.advance(500 * time.Millisecond)
	expect("analyst", "/v1/chains", http.StatusOK)
	resp, _ = expect("analyst", "/v1/chains", http.StatusTooManyRequests)
	wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || wait < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// A long idle refills the bucket to the burst, never beyond it.
	clock.advance(time.Hour)
	for range 3 {
		expect("analyst", "/v1/chains", http.StatusOK)
	}
	expect("analyst", "/v1/chains", http.StatusTooManyRequests)

	for who, want := range map[string]float64{"ann": 7, "ops-ns": 1, "ivy": 0} {
		if got := testutil.ToFloat64(srv.metrics.rateLimited.WithLabelValues(who)); got != want {
			t.Errorf("rate_limited_total{who=%q} = %g, want %g", who, got, want)
		}
	}
}
