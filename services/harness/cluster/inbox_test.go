package cluster

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// serviceUsers are the users of accounts.conf a service connects as.
var serviceUsers = []string{"mllp-ingest", "atna-ingest", "fhir-ingest", "linker", "chwriter", "api", "scorecard"}

// TestNoServiceReadsAnothersReplies connects every service as its user of
// deploy/nats/accounts.conf, the way the service connects (bus.Connect),
// and has every other service's user subscribe to the inbox prefix of its
// connection while it asks JetStream for its account information: the
// service gets its answer, every other user is refused the subscription
// and receives nothing (replies carry PubAcks and pulled messages, such as
// the events and their sealed bytes that a linker or chwriter pulls).
func TestNoServiceReadsAnothersReplies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startNATS(t, ctx)
	for _, victim := range serviceUsers {
		t.Run(victim, func(t *testing.T) {
			nc, err := bus.Connect(userURL(c, victim), victim)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			inbox := nc.NewInbox()
			prefix := inbox[:strings.LastIndex(inbox, ".")]
			var overheard atomic.Int64
			refused := map[string]chan error{}
			for _, spy := range serviceUsers {
				if spy != victim {
					refused[spy] = spyOn(t, c, spy, prefix+".>", &overheard)
				}
			}
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			actx, acancel := context.WithTimeout(ctx, 5*time.Second)
			defer acancel()
			if _, err := js.AccountInfo(actx); err != nil {
				t.Fatalf("%s's JetStream API call through its own inbox %s: %v", victim, prefix, err)
			}
			for spy, ch := range refused {
				select {
				case err := <-ch:
					if !errors.Is(err, nats.ErrPermissionViolation) {
						t.Errorf("%s subscribing to %s.>: %v, want a permission violation", spy, prefix, err)
					}
				case <-time.After(2 * time.Second):
					t.Errorf("%s may subscribe to %s's inbox %s.>", spy, victim, prefix)
				}
			}
			if n := overheard.Load(); n > 0 {
				t.Errorf("other users received %d of %s's replies", n, victim)
			}
		})
	}
}

// spyOn connects as user, subscribes to subject and counts what arrives
// in overheard; the channel gets the server's refusal.
func spyOn(t *testing.T, c *NATSCluster, user, subject string, overheard *atomic.Int64) chan error {
	t.Helper()
	refused := make(chan error, 1)
	nc, err := nats.Connect(userURL(c, user), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case refused <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe(subject, func(*nats.Msg) { overheard.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return refused
}

// TestMonitorOnLoopback: the check TestNATSConfig applies to nats.conf,
// on the forms a NATS configuration may give its monitoring endpoints.
func TestMonitorOnLoopback(t *testing.T) {
	for text, ok := range map[string]bool{
		"http: 127.0.0.1:8222":                      true,
		"http: localhost:8222":                      true,
		"https: \"[::1]:8222\"":                     true,
		"listen: 0.0.0.0:4222":                      true,
		"listen: 127.0.0.1:4222\nhttp_port: 8222":   true,
		"http_host: 127.0.0.1\nhttp_port: 8222":     true,
		"http: 0.0.0.0:8222":                        false,
		"http: 8222":                                false,
		"listen: 0.0.0.0:4222\nmonitor_port: 8222":  false,
		"host: 10.0.0.5\nhttps_port: 8222":          false,
		"http_host: 0.0.0.0\nhttp: 127.0.0.1:8222":  true,
		"http_host: 127.0.0.1\nhttps: 0.0.0.0:8222": false,
	} {
		m, err := conf.Parse(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if err := monitorOnLoopback(m); (err == nil) != ok {
			t.Errorf("%q: %v, want loopback %t", text, err, ok)
		}
	}
}
