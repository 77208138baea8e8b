package simulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hinscore/hinscore/services/lib/service"
)

// XCATarget is where one cross-community network's feed goes.
type XCATarget struct {
	// Syslog is the network's syslog-TLS listener, host:port (FeedATNA).
	// Each gateway opens its own connection, as each is its own sender.
	Syslog string
	// TLS configures those connections: RootCAs to trust the listener,
	// Certificates for mutual TLS, ServerName. Nil = the system's roots.
	TLS *tls.Config
	// SOAP is the URL SOAP copies are posted to (FeedSOAP), with Token as
	// the network's bearer token; Client nil = one with WriteTimeout.
	SOAP   string
	Token  string
	Client *http.Client
	// Resend is the syslog sender's replay window: after a broken
	// connection, a gateway writes again everything it wrote within this
	// long before its last frame (at most the last 32 MiB), before going on
	// (0 = DefaultResend; negative = none). Syslog has no acknowledgement, so a frame written
	// just before the listener died may never have been stored; what was
	// stored is stored once again by the pipeline's de-duplication.
	Resend time.Duration
	// Delivered, when set, is called after each message is written (syslog)
	// or answered 2xx or 4xx (SOAP), from the network's goroutine: the
	// network's next message waits for it to return (a caller may hold the
	// feed back with it).
	Delivered func(m XCAMessage)
}

// DefaultResend is the syslog replay window: three times the 10 s within
// which the audit listener stores a record it has read or closes the
// connection.
const DefaultResend = 30 * time.Second

func (t XCATarget) resend() time.Duration {
	switch {
	case t.Resend == 0:
		return DefaultResend
	case t.Resend < 0:
		return 0
	}
	return t.Resend
}

// XCAGatewayStats counts what happened to one gateway's messages.
type XCAGatewayStats struct {
	Network, Gateway string
	// Sent is every frame written or POST made, re-sends included.
	Sent int
	// Accepted is SOAP copies answered 2xx (syslog has no acknowledgement).
	Accepted int
	// Rejected is SOAP copies answered 4xx (not re-sent).
	Rejected int
	// Retried is re-sends after a broken connection, a 5xx or a 429.
	Retried    int
	Reconnects int
	// Resent is syslog frames written again from the replay window after
	// a broken connection (XCATarget.Resend).
	Resent int
}

func (s *XCAGatewayStats) add(o XCAGatewayStats) {
	s.Sent += o.Sent
	s.Accepted += o.Accepted
	s.Rejected += o.Rejected
	s.Retried += o.Retried
	s.Reconnects += o.Reconnects
	s.Resent += o.Resent
}

// XCAStats sums a Send over every gateway.
type XCAStats struct {
	XCAGatewayStats
	Gateways   []XCAGatewayStats
	Duration   time.Duration
	MsgsPerSec float64
}

func (s XCAStats) String() string {
	return fmt.Sprintf("sent=%d accepted=%d rejected=%d retried=%d reconnects=%d resent=%d duration=%s msgs/s=%.0f",
		s.Sent, s.Accepted, s.Rejected, s.Retried, s.Reconnects, s.Resent, s.Duration.Round(time.Millisecond), s.MsgsPerSec)
}

// Send delivers every network's messages to targets[network], all networks
// at once. Within a network, messages go out in delivery order across its
// gateways (each gateway over its own syslog-TLS connection, or as its own
// HTTP POSTs with X-Gateway-Side). A broken connection or a 5xx is retried
// (backoff 50 ms doubling to 1 s) until it has lasted ReconnectWithin,
// then Send gives up with ErrGaveUp. Syslog has no acknowledgement: a
// frame counts as sent once written.
func (p *XCAPlan) Send(ctx context.Context, targets map[string]XCATarget) (XCAStats, error) {
	for _, n := range p.cfg.Networks {
		t := targets[n.Name]
		if (n.Feed == FeedATNA && t.Syslog == "") || (n.Feed == FeedSOAP && t.SOAP == "") {
			return XCAStats{}, fmt.Errorf("simulator.XCAPlan.Send: %w: %q (%s)", ErrNoTarget, n.Name, n.Feed)
		}
	}
	start := time.Now()
	stats := make([][]XCAGatewayStats, len(p.cfg.Networks))
	errs := make([]error, len(p.cfg.Networks))
	var wg sync.WaitGroup
	for i, n := range p.cfg.Networks {
		wg.Go(func() { stats[i], errs[i] = p.sendNetwork(ctx, n, targets[n.Name]) })
	}
	wg.Wait()
	st := XCAStats{Duration: time.Since(start)}
	for _, ns := range stats {
		for _, g := range ns {
			st.Gateways = append(st.Gateways, g)
			st.add(g)
		}
	}
	if st.Duration > 0 {
		st.MsgsPerSec = float64(st.Sent) / st.Duration.Seconds()
	}
	if err := errors.Join(errs...); err != nil {
		return st, fmt.Errorf("simulator.XCAPlan.Send: %w", err)
	}
	return st, nil
}

// xcaDeliverer sends one message of a gateway, retrying what may succeed later.
type xcaDeliverer interface {
	deliver(ctx context.Context, m XCAMessage, st *XCAGatewayStats) error
	// flush makes good, once the last message is out, what a broken
	// connection may have lost.
	flush(ctx context.Context, st func(gateway string) *XCAGatewayStats) error
	close()
}

func (p *XCAPlan) sendNetwork(ctx context.Context, n XCANetwork, t XCATarget) ([]XCAGatewayStats, error) {
	msgs := p.AllMessages(n.Name)
	slices.SortStableFunc(msgs, func(a, b XCAMessage) int { return a.DeliverAt.Compare(b.DeliverAt) })
	stats := make([]XCAGatewayStats, len(n.Gateways))
	index := map[string]int{}
	for i, g := range n.Gateways {
		stats[i] = XCAGatewayStats{Network: n.Name, Gateway: g.ID}
		index[g.ID] = i
	}
	var d xcaDeliverer
	if n.Feed == FeedATNA {
		d = &syslogDeliverer{cfg: p.cfg, target: t, window: t.resend(), gateways: map[string]*syslogGateway{}}
	} else {
		client := t.Client
		if client == nil {
			client = &http.Client{Timeout: p.cfg.WriteTimeout}
		}
		d = &soapDeliverer{cfg: p.cfg, target: t, client: client}
	}
	defer d.close()
	began := time.Now()
	for i, m := range msgs {
		if err := pace(ctx, began, i, p.cfg.Rate); err != nil {
			return stats, fmt.Errorf("%s: %w", n.Name, err)
		}
		if err := d.deliver(ctx, m, &stats[index[m.Gateway]]); err != nil {
			return stats, fmt.Errorf("%s/%s: %w", n.Name, m.Gateway, err)
		}
		if t.Delivered != nil {
			t.Delivered(m)
		}
	}
	if err := d.flush(ctx, func(g string) *XCAGatewayStats { return &stats[index[g]] }); err != nil {
		return stats, fmt.Errorf("%s: %w", n.Name, err)
	}
	return stats, nil
}

// pace waits until the i'th message's slot at rate messages/s from began.
func pace(ctx context.Context, began time.Time, i int, rate float64) error {
	if rate <= 0 {
		return nil
	}
	wait := time.Until(began.Add(time.Duration(float64(i) / rate * float64(time.Second))))
	if wait <= 0 {
		return nil
	}
	return service.Sleep(ctx, wait)
}

// retrier paces attempts after failures and gives up once failures have
// lasted longer than ReconnectWithin.
type retrier struct {
	within  time.Duration
	began   time.Time
	backoff time.Duration
}

func (r *retrier) wait(ctx context.Context, cause error) error {
	if r.within < 0 {
		return cause
	}
	if r.began.IsZero() {
		r.began, r.backoff = time.Now(), minReconnectBackoff
	}
	if time.Since(r.began) > r.within {
		return fmt.Errorf("%w after %s: %w", ErrGaveUp, r.within, cause)
	}
	if err := service.Sleep(ctx, r.backoff); err != nil {
		return err
	}
	r.backoff = min(2*r.backoff, maxReconnectBackoff)
	return nil
}

// soapDeliverer posts SOAP copies.
type soapDeliverer struct {
	cfg    XCAConfig
	target XCATarget
	client *http.Client
}

func (s *soapDeliverer) deliver(ctx context.Context, m XCAMessage, st *XCAGatewayStats) error {
	h := http.Header{}
	h.Set("Content-Type", "application/soap+xml; charset=UTF-8")
	h.Set("X-Gateway-Side", m.Side)
	if s.target.Token != "" {
		h.Set("Authorization", "Bearer "+s.target.Token)
	}
	accepted, err := postCopy(ctx, s.client, s.cfg.ReconnectWithin, s.target.SOAP, h, m.Raw, &st.Sent, &st.Retried)
	switch {
	case err != nil:
		return err
	case accepted:
		st.Accepted++
	default:
		st.Rejected++
	}
	return nil
}

// postCopy posts a copy of a message to url: true once stored (2xx),
// false when refused (4xx but 408 and 429: not worth sending again);
// 5xx, 408, 429 and broken connections are retried (50 ms doubling to
// 1 s) until within has passed, then ErrGaveUp. It counts every attempt
// in sent and every failure followed by a wait in retried.
func postCopy(ctx context.Context, client *http.Client, within time.Duration, url string, h http.Header, body []byte, sent, retried *int) (bool, error) {
	r := retrier{within: within}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return false, fmt.Errorf("POST %s: %w", url, err)
		}
		req.Header = h.Clone()
		*sent++
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch code := resp.StatusCode; {
			case code >= 200 && code < 300:
				return true, nil
			case code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout:
				return false, nil
			default:
				err = fmt.Errorf("POST %s: status %d", url, code)
			}
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		*retried++
		if werr := r.wait(ctx, err); werr != nil {
			return false, werr
		}
	}
}

func (s *soapDeliverer) flush(context.Context, func(string) *XCAGatewayStats) error { return nil }

func (s *soapDeliverer) close() { s.client.CloseIdleConnections() }
