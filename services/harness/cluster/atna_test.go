package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// TestATNAIngestAsItsUser runs atna-ingest as the atna-ingest user of
// accounts.conf against the provisioned streams, as the deployment does:
// mutual TLS on its stream listener and a UDP listener, HINSCORE_STREAMS=check
// with the partition count. The gateways of a simulated cross-community
// network send their audit records over syslog-TLS; a frame and a datagram
// that are not syslog go to the DLQ. Every record must be stored, both
// dead letters must be on dlq.atna-ingest, and NATS must refuse nothing.
func TestATNAIngestAsItsUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, v, admin := provisionedCluster(t, ctx)

	// With re-sent copies (the simulator's default rate): on a clustered
	// stream, a copy whose Msg-Id is still being stored is answered 409
	// (JetStream error 10158, "duplicate message id is in process"); the
	// ingest asks again until the stream settles it, and must neither
	// close the gateway's connection nor count a failed store.
	plan, err := simulator.GenerateXCA(simulator.XCAConfig{Journeys: 60, Seed: 3, DuplicateRate: 0.05,
		Networks: []simulator.XCANetwork{simulator.CarequalEast()}})
	if err != nil {
		t.Fatal(err)
	}
	network := simulator.CarequalEast().Name
	pki := ingesttest.NewPKI(t, "gateways' CA")
	cfg, err := atnaingest.ConfigFromEnv(service.MapEnv(map[string]string{
		"HINSCORE_ATNA_LISTENERS":      network + "=127.0.0.1:0",
		"HINSCORE_ATNA_UDP":            network + "=127.0.0.1:0",
		"HINSCORE_ATNA_TLS_CERT":       pki.CertFile,
		"HINSCORE_ATNA_TLS_KEY":        pki.KeyFile,
		"HINSCORE_ATNA_TLS_CLIENT_CAS": network + "=" + pki.CAFile,
		"HINSCORE_PARTITIONS":          "4",
		"HINSCORE_PATIENT_KEY":         "cluster test patient key",
		bus.EnvNATSURL:                 userURL(c, "atna-ingest"),
		bus.EnvStreams:                 "check",
		bus.EnvStreamReplicas:          "3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	// As service.Main connects it: its user, the stream check, the count.
	js, closer, err := cfg.NATS.Connect(ctx, "atna-ingest", cfg.EventPartitions())
	if err != nil {
		t.Fatalf("atna-ingest's stream check as its user: %v", err)
	}
	defer closer.Shutdown(ctx)
	js.Conn().SetErrorHandler(v.handler("atna-ingest"))
	reg := prometheus.NewRegistry()
	srv, err := atnaingest.New(cfg, service.Deps{JetStream: js, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Metrics: reg, Clock: service.SystemClock{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)

	stats, err := plan.Send(ctx, map[string]simulator.XCATarget{network: {Syslog: srv.Addrs()[network], TLS: pki.ClientTLS(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent != plan.Frames() {
		t.Fatalf("sent %d frames, the plan has %d (%s)", stats.Sent, plan.Frames(), stats)
	}
	sendNotSyslog(t, srv.Addrs()[network], srv.UDPAddrs()[network], pki.ClientTLS(true))

	// Stored in a second or two: a refused publish waits for nothing longer.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	waitFor(t, wctx, v, "every record stored", func() bool {
		return counter(t, reg, "hinscore_atna_messages_stored_total", network) == float64(plan.Frames())
	})
	waitFor(t, wctx, v, "both dead letters", func() bool { return subjectCount(t, ctx, admin, bus.StreamDLQ, bus.DLQSubject("atna-ingest")) == 2 })
	if plan.Duplicates() == 0 {
		t.Fatal("the plan re-sends no copy: the in-process case is not exercised")
	}
	// Only the two frames that are not syslog are rejected: no copy is
	// refused as a failed store (reason publish), no connection closed.
	if n := counter(t, reg, "hinscore_atna_messages_rejected_total", network); n != 2 {
		t.Errorf("%v records rejected, want only the 2 that are not syslog (%d copies re-sent)", n, plan.Duplicates())
	}
	if n := subjectCount(t, ctx, admin, bus.StreamEvents, "events.*."+network); n < uint64(plan.MessageCount()) {
		t.Errorf("EVENTS holds %d events of %s, fewer than its %d distinct records", n, network, plan.MessageCount())
	}
	v.check(t)
}

// sendNotSyslog sends one octet-counted frame over TLS and one datagram,
// neither a syslog message: each is a dead letter with reason syslog (with
// bytes of its own: the same bytes would be one dead letter).
func sendNotSyslog(t *testing.T, streamAddr, udpAddr string, tlsCfg *tls.Config) {
	t.Helper()
	conn, err := tls.Dial("tcp", streamAddr, tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const junk = "no syslog over TLS"
	if _, err := fmt.Fprintf(conn, "%d %s", len(junk), junk); err != nil {
		t.Fatal(err)
	}
	u, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write([]byte("no syslog over UDP")); err != nil {
		t.Fatal(err)
	}
}

// counter sums a counter family's series of one network.
func counter(t *testing.T, reg *prometheus.Registry, name, network string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "network" && l.GetValue() == network {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// subjectCount is the number of messages of stream on subject.
func subjectCount(t *testing.T, ctx context.Context, js jetstream.JetStream, stream, subject string) uint64 {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// waitFor polls cond until it holds or ctx ends, then reports what NATS
// refused first.
func waitFor(t *testing.T, ctx context.Context, v *violations, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			v.check(t)
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
