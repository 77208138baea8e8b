package chwriter_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/ids"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/service"
)

// harness is one test's world: an embedded NATS with the hinscore streams
// and a fresh, migrated ClickHouse database.
type harness struct {
	t    testing.TB
	ctx  context.Context
	js   jetstream.JetStream
	conn driver.Conn
	dsn  chstore.DSN
	url  string // of the embedded NATS
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	conn, d := chtest.Database(t)
	opts := bus.DefaultStreamOptions()
	opts.MemoryStorage = true
	url, js := bustest.Start(t, &opts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return &harness{t: t, ctx: ctx, js: js, conn: conn, dsn: d, url: url}
}

// testConfig batches small and flushes fast so tests see several batches.
func testConfig() chwriter.Config {
	c := chwriter.DefaultConfig()
	c.BatchRows = 100
	c.FlushInterval = 50 * time.Millisecond
	c.AckWait = 5 * time.Second
	c.RetryMax = 200 * time.Millisecond
	return c
}

func testLogger(t testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	}
	return zerolog.New(os.Stderr).Level(zerolog.ErrorLevel)
}

// startWriter starts a writer and shuts it down when the test ends (a
// second Shutdown by the test itself is a no-op).
func (h *harness) startWriter(cfg chwriter.Config, reg prometheus.Registerer) *chwriter.Writer {
	h.t.Helper()
	w, err := chwriter.New(cfg, service.Deps{JetStream: h.js, ClickHouse: h.conn, Log: testLogger(h.t), Metrics: reg})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := w.Start(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			h.t.Errorf("Shutdown: %v", err)
		}
	})
	return w
}

// publish sends messages with their Nats-Msg-Id through a bounded async
// window and waits for every PubAck.
func (h *harness) publish(msgs ...*nats.Msg) {
	h.t.Helper()
	const window = 512
	for i := 0; i < len(msgs); i += window {
		var futures []jetstream.PubAckFuture
		for _, m := range msgs[i:min(i+window, len(msgs))] {
			f, err := h.js.PublishMsgAsync(m)
			if err != nil {
				h.t.Fatalf("publish %s: %v", m.Subject, err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				h.t.Fatalf("publish %s: %v", f.Msg().Subject, err)
			case <-h.ctx.Done():
				h.t.Fatal("publish: timed out waiting for PubAcks")
			}
		}
	}
}

func marshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventMsg(t testing.TB, ev *hinscorev1.ExchangeEvent) *nats.Msg {
	m := nats.NewMsg(bus.EventSubject(ev.GetPartition(), ev.GetNetwork()))
	m.Data = marshal(t, ev)
	m.Header.Set(jetstream.MsgIDHeader, "event:"+ev.GetEventId())
	return m
}

func outcomeMsg(t testing.TB, o *hinscorev1.Outcome) *nats.Msg {
	m := nats.NewMsg(bus.OutcomeSubject(o.GetNetwork()))
	m.Data = marshal(t, o)
	m.Header.Set(jetstream.MsgIDHeader, bus.OutcomeMsgID(o.GetOutcomeId(), o.GetVersion()))
	return m
}

var networks = []string{"north", "south", "west"}

// base is the event time of the first generated message.
var base = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()

// genEvent is the i-th event of a deterministic stream: requests and their
// responses alternating over three networks and four partitions.
func genEvent(i int) *hinscorev1.ExchangeEvent {
	network := networks[i%len(networks)]
	roles := []hinscorev1.Role{hinscorev1.Role_ROLE_REQUEST, hinscorev1.Role_ROLE_RESPONSE}
	return &hinscorev1.ExchangeEvent{
		EventId:        ids.Event(network, fmt.Appendf(nil, "MSH|^~\\&|gen|%d", i)).String(),
		Network:        network,
		Format:         hinscorev1.Format_FORMAT_HL7V2,
		MessageId:      fmt.Sprintf("M%06d", i),
		MessageType:    "QBP^Q22^QBP_Q21",
		Role:           roles[i%2],
		RequestKind:    "patient_query",
		CorrelationKey: fmt.Sprintf("%s|FAC|M%06d", network, i-i%2),
		RequesterOrg:   "FAC",
		ResponderOrg:   "HIE",
		EventTimeMs:    base + int64(i)*1000,
		IngestTimeMs:   base + int64(i)*1000 + 7,
		Status:         hinscorev1.Status_STATUS_OK,
		ReasonCodes:    []string{"hl70357|207"},
		RawSubject:     bus.RawSubject(network, "hl7v2"),
		RawSeq:         uint64(i + 1),
		Partition:      uint32(i % 4),
	}
}

// genOutcome is version v (1-based) of the j-th outcome: each version adds
// a step; the last version of a chain fulfils it, earlier ones leave it
// unanswered.
func genOutcome(j int, v, last uint64) *hinscorev1.Outcome {
	network := networks[j%len(networks)]
	key := fmt.Sprintf("%s|FAC|R%06d", network, j)
	o := &hinscorev1.Outcome{
		OutcomeId:      ids.Outcome(network, key).String(),
		Version:        v,
		Network:        network,
		RequestId:      fmt.Sprintf("R%06d", j),
		CorrelationKey: key,
		RequestKind:    "patient_query",
		RequesterOrg:   "FAC",
		ResponderOrg:   "HIE",
		OutcomeClass:   hinscorev1.OutcomeClass_OUTCOME_CLASS_UNANSWERED,
		RequestedAtMs:  base + int64(j)*1000,
		SlaMs:          60000,
		GraceMs:        30000,
		RuleVersion:    "test-1",
	}
	if v == last {
		o.OutcomeClass = hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED
		o.AnsweredAtMs = o.RequestedAtMs + int64(v)*500
		o.HasTtf, o.TtfMs = true, v*500
	}
	for s := uint64(0); s < v; s++ {
		o.Steps = append(o.Steps, &hinscorev1.Step{
			EventId:     ids.Event(network, fmt.Appendf(nil, "%s/%d", key, s)).String(),
			MessageId:   fmt.Sprintf("R%06d.%d", j, s),
			MessageType: "RSP^K22",
			Role:        hinscorev1.Role_ROLE_INTERIM,
			Status:      hinscorev1.Status_STATUS_ACCEPTED,
			EventTimeMs: o.RequestedAtMs + int64(s)*500,
			RawSeq:      uint64(s + 1),
		})
	}
	return o
}

// versionsOf is how many versions outcome j has (1 to 3).
func versionsOf(j int) uint64 { return uint64(j%3 + 1) }

// allOutcomeMsgs returns every version of outcomes [from, to), in an order
// that interleaves chains and versions like a live linker would.
func allOutcomeMsgs(t testing.TB, from, to int) []*nats.Msg {
	var msgs []*nats.Msg
	for v := uint64(1); v <= 3; v++ {
		for j := from; j < to; j++ {
			if last := versionsOf(j); v <= last {
				msgs = append(msgs, outcomeMsg(t, genOutcome(j, v, last)))
			}
		}
	}
	return msgs
}

func eventMsgs(t testing.TB, from, to int) []*nats.Msg {
	var msgs []*nats.Msg
	for i := from; i < to; i++ {
		msgs = append(msgs, eventMsg(t, genEvent(i)))
	}
	return msgs
}

func (h *harness) count(query string) uint64 {
	h.t.Helper()
	var n uint64
	if err := h.conn.QueryRow(h.ctx, query).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// waitCount polls until query returns want, failing after timeout.
func (h *harness) waitCount(query string, want uint64, timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var got uint64
	for time.Now().Before(deadline) {
		if got = h.count(query); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("%s = %d after %s, want %d", query, got, timeout, want)
}

func (h *harness) consumerInfo(stream, name string) *jetstream.ConsumerInfo {
	h.t.Helper()
	c, err := h.js.Consumer(h.ctx, stream, name)
	if err != nil {
		h.t.Fatalf("consumer %s/%s: %v", stream, name, err)
	}
	info, err := c.Info(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info
}

// metricSum adds up every series of a metric family in reg.
func metricSum(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}
