package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/harness/faults"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
)

// deployDir is the repository's deploy/ directory, seen from this module.
const deployDir = "../../../deploy"

// users are the NATS users of deploy/nats/accounts.conf and the variable
// holding each one's password on the server.
var users = map[string]string{
	"sys": "NATS_SYS_PASSWORD", "admin": "NATS_ADMIN_PASSWORD",
	"mllp-ingest": "NATS_MLLP_INGEST_PASSWORD", "atna-ingest": "NATS_ATNA_INGEST_PASSWORD",
	"fhir-ingest": "NATS_FHIR_INGEST_PASSWORD", "linker": "NATS_LINKER_PASSWORD",
	"chwriter": "NATS_CHWRITER_PASSWORD", "api": "NATS_API_PASSWORD",
	"scorecard": "NATS_SCORECARD_PASSWORD",
}

func password(user string) string { return "test-password-of-" + user }

// startNATS starts a 3-node cluster that loads deploy/nats/accounts.conf,
// with every user's password set in the environment the way the NATS pods
// get them from their Secret.
func startNATS(t testing.TB, ctx context.Context) *NATSCluster {
	t.Helper()
	for user, env := range users {
		t.Setenv(env, password(user))
	}
	dir := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(deployDir, "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "accounts.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := StartNATSCluster(ctx, NATSOptions{Dir: dir, Config: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return c
}

// userURL is the cluster's NATS_URL for one user: every node, with the
// user's credentials, as a service's Secret holds it.
func userURL(c *NATSCluster, user string) string {
	urls := strings.Split(c.URL(), ",")
	for i, u := range urls {
		urls[i] = strings.Replace(u, "nats://", "nats://"+user+":"+password(user)+"@", 1)
	}
	return strings.Join(urls, ",")
}

// violations collects the asynchronous errors of the services' NATS
// connections: a permission the deploy configuration lacks shows up here.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(user string) nats.ErrHandler {
	return func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if err == nil {
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if len(v.errs) < 20 {
			v.errs = append(v.errs, user+": "+err.Error())
		}
	}
}

func (v *violations) check(t testing.TB) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(strings.ToLower(e), "permission") || strings.Contains(strings.ToLower(e), "authorization") {
			t.Errorf("NATS refused a service: %s", e)
		}
	}
}

// connect opens a service's own connection as its NATS user.
func (v *violations) connect(t testing.TB, c *NATSCluster, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := bus.Connect(userURL(c, user), user)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetErrorHandler(v.handler(user))
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// topology is how many replicas of each consuming service run.
type topology struct {
	linkers, writers int
	partitions       int
	idle             time.Duration
	lateness         time.Duration // 0: the default
	// ch, when set, is the ClickHouse the writer writes to (a cluster's
	// node, through its Distributed tables) instead of a test database of
	// the local server; rollupShards are then one node of each shard.
	ch           driver.Conn
	rollupShards []chstore.DSN
}

// stage is the pipeline composed against a NATS cluster: one ingest, the
// linker and writer replicas of its topology, each service with its own
// connection and NATS user, and a ClickHouse database of its own.
type stage struct {
	t     testing.TB
	nats  *NATSCluster
	admin jetstream.JetStream
	ch    driver.Conn
	v     *violations

	ingest *mllpingest.Server
	comps  []service.Component // start order: writers, linkers, ingest
	regs   []*prometheus.Registry
}

// registry gives each service instance its own metrics, as in its own process.
func (s *stage) registry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	s.regs = append(s.regs, r)
	return r
}

// provisionedCluster starts the cluster with the streams provisioned by
// admin, as a deployment has them before any service starts; v collects
// what NATS refuses the services' connections.
func provisionedCluster(t testing.TB, ctx context.Context) (c *NATSCluster, v *violations, admin jetstream.JetStream) {
	t.Helper()
	c, v = startNATS(t, ctx), &violations{}
	_, admin = v.connect(t, c, "admin")
	provisionStreams(t, ctx, admin)
	return c, v, admin
}

// provisionStreams creates the streams as the nats-streams Job does: the
// deploy configuration, by the admin user (no service may create or change
// these streams). JetStream reserves a stream's MaxBytes on each replica's
// disk at placement, so the tests cap RAW's and DLQ's at 1 GiB.
func provisionStreams(t testing.TB, ctx context.Context, admin jetstream.JetStream) {
	t.Helper()
	for _, cfg := range StreamConfigs() {
		cfg.MaxBytes = min(cfg.MaxBytes, 1<<30)
		if _, err := admin.CreateOrUpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
}

func startStage(t testing.TB, ctx context.Context, networks []string, topo topology) *stage {
	t.Helper()
	ch := topo.ch
	if ch == nil {
		ch, _ = chtest.Database(t)
	}
	s := &stage{t: t, nats: startNATS(t, ctx), ch: ch, v: &violations{}}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	_, s.admin = s.v.connect(t, s.nats, "admin")
	provisionStreams(t, ctx, s.admin)

	env := service.MapEnv(map[string]string{"HINSCORE_PARTITIONS": fmt.Sprint(topo.partitions)})
	wcfg, err := chwriter.ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	wcfg.AckWait, wcfg.RetryMax, wcfg.RollupEvery = 10*time.Second, time.Second, 0
	wcfg.RollupShards = topo.rollupShards
	for i := range topo.writers {
		_, js := s.v.connect(t, s.nats, "chwriter")
		w, err := chwriter.New(wcfg, service.Deps{JetStream: js, ClickHouse: ch, Log: log.With().Str("component", fmt.Sprintf("chwriter-%d", i)).Logger(), Metrics: s.registry()})
		if err != nil {
			t.Fatal(err)
		}
		s.comps = append(s.comps, w)
	}
	for i := range topo.linkers {
		lcfg, err := linker.ConfigFromEnv(env)
		if err != nil {
			t.Fatal(err)
		}
		lcfg.Idle, lcfg.ReplicaID, lcfg.LeaseTTL = topo.idle, fmt.Sprintf("linker-%d", i), 3*time.Second
		lcfg.CheckpointInterval = time.Second
		if topo.lateness > 0 {
			lcfg.Lateness = topo.lateness
		}
		_, js := s.v.connect(t, s.nats, "linker")
		l, err := linker.New(lcfg, js, log.With().Str("component", lcfg.ReplicaID).Logger(), s.registry(), service.SystemClock{})
		if err != nil {
			t.Fatal(err)
		}
		s.comps = append(s.comps, l)
	}
	icfg, err := mllpingest.ConfigFromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	icfg.PatientKey, icfg.PatientKeyID = []byte("cluster test patient key"), "cluster"
	icfg.Listeners = nil
	for _, n := range networks {
		icfg.Listeners = append(icfg.Listeners, mllpingest.Listener{Network: n, Addr: "127.0.0.1:0"})
	}
	_, ijs := s.v.connect(t, s.nats, "mllp-ingest")
	if s.ingest, err = mllpingest.New(icfg, service.Deps{JetStream: ijs, Log: log.With().Str("component", "mllp-ingest").Logger(), Metrics: s.registry(), Clock: service.SystemClock{}}); err != nil {
		t.Fatal(err)
	}
	s.comps = append(s.comps, s.ingest)

	var started []service.Component
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := service.ShutdownAll(sctx, started...); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	linkers := 0
	for _, c := range s.comps {
		if _, ok := c.(*linker.Linker); ok && linkers == 1 {
			// The first replica creates the linker's stores (the buckets
			// and the marks stream, R3) before the others start, as an
			// administrator provisions them in production: replicas
			// creating them at once on a cluster just formed had their
			// requests time out for minutes.
			s.waitLinkerStores(ctx, time.Minute)
		}
		if _, ok := c.(*linker.Linker); ok {
			linkers++
		}
		if err := c.Start(ctx); err != nil {
			t.Fatalf("start %T: %v", c, err)
		}
		started = append(started, c)
	}
	return s
}

// waitLinkerStores waits until the linker's stores exist: the marks
// stream, which a replica creates after its checkpoint and lease buckets.
func (s *stage) waitLinkerStores(ctx context.Context, limit time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if _, err := s.admin.Stream(ctx, "LINKER_WATERMARKS"); err == nil {
			return
		} else if time.Now().After(deadline) {
			s.t.Fatalf("the first linker's stores are not there after %s: %v", limit, err)
		}
		select {
		case <-ctx.Done():
			s.t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// counts is what ClickHouse holds, deduplicated.
type counts struct{ events, outcomes uint64 }

func (s *stage) stored(ctx context.Context) (counts, error) {
	var c counts
	if err := s.ch.QueryRow(ctx, "SELECT count() FROM events").Scan(&c.events); err != nil {
		return c, err
	}
	err := s.ch.QueryRow(ctx, "SELECT count() FROM outcomes").Scan(&c.outcomes)
	return c, err
}

// waitStored waits until ClickHouse holds at least want.
func (s *stage) waitStored(ctx context.Context, want counts) {
	s.t.Helper()
	for {
		got, err := s.stored(ctx)
		if err == nil && got.events >= want.events && got.outcomes >= want.outcomes {
			return
		}
		select {
		case <-ctx.Done():
			s.v.check(s.t)
			s.logMetrics("hinscore_linker_")
			s.t.Fatalf("ClickHouse holds %+v, want %+v (last error %v)", got, want, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// assertTruth checks from ClickHouse that nothing was lost and nothing
// counted twice: exactly the simulator's valid messages and requests, every
// network's outcome classes equal to its truth, and EVENTS holding each
// message once.
func (s *stage) assertTruth(ctx context.Context, plan *simulator.Plan) {
	t := s.t
	t.Helper()
	want := counts{events: uint64(plan.ValidMessages()), outcomes: uint64(len(plan.Requests()))}
	s.waitStored(ctx, want)
	// A straggling duplicate would be stored before the pipeline settles:
	// compare exactly only then.
	if err := faults.WaitPipelineSettled(ctx, s.linkerMarks, s.admin, time.Minute); err != nil {
		s.logMetrics("hinscore_linker_")
		t.Fatal(err)
	}
	got, err := s.stored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("ClickHouse holds %d events and %d outcomes; the simulator sent %d valid messages and %d requests",
			got.events, got.outcomes, want.events, want.outcomes)
	}
	stream, err := s.admin.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if n := stream.CachedInfo().State.Msgs; n != want.events {
		t.Fatalf("EVENTS holds %d messages, the simulator sent %d valid ones", n, want.events)
	}
	measured := map[string]map[string]int{}
	rows, err := s.ch.Query(ctx, "SELECT network, outcome, count() FROM outcomes GROUP BY network, outcome")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var network, class string
		var n uint64
		if err := rows.Scan(&network, &class, &n); err != nil {
			t.Fatal(err)
		}
		if measured[network] == nil {
			measured[network] = map[string]int{}
		}
		measured[network][class] = int(n)
	}
	truth := plan.Truth()
	for network, classes := range truth {
		for class, n := range classes {
			if measured[network][class] != n {
				t.Errorf("%s %s: ClickHouse %d, truth %d", network, class, measured[network][class], n)
			}
		}
		for class, n := range measured[network] {
			if _, ok := classes[class]; !ok && n != 0 {
				t.Errorf("%s %s: ClickHouse %d, truth has none", network, class, n)
			}
		}
	}
	s.v.check(t)
}

// outcomeSet is every linked request as ClickHouse holds it, one line per
// outcome (its latest version), without the wall-clock-dependent decision
// time of the idle rule.
func (s *stage) outcomeSet(ctx context.Context) map[string]string {
	s.t.Helper()
	rows, err := s.ch.Query(ctx, `SELECT toString(outcome_id), network, request_id, outcome, response_id,
		exception_code, requested_at_ms, answered_at_ms, ifNull(ttf_ms, 0), step_count FROM outcomes`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, network, request, class, response, exception string
		var requested, answered int64
		var ttf uint64
		var steps uint32
		if err := rows.Scan(&id, &network, &request, &class, &response, &exception, &requested, &answered, &ttf, &steps); err != nil {
			s.t.Fatal(err)
		}
		out[id] = fmt.Sprintf("%s %s %s %s %s %d %d %d %d", network, request, class, response, exception, requested, answered, ttf, steps)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// generate makes the simulator's plan for a run: re-sends are allowed
// generously, since a message the ingest could not store while a stream
// elected a new leader is refused (AE) and must be sent again.
func generate(t testing.TB, requests int, seed int64) *simulator.Plan {
	t.Helper()
	return generateSpan(t, requests, seed, 0)
}

// generateSpan is generate with the requests spread over span of event time
// (0: the simulator's default day).
func generateSpan(t testing.TB, requests int, seed int64, span time.Duration) *simulator.Plan {
	t.Helper()
	plan, err := simulator.Generate(simulator.Config{Requests: requests, Seed: seed, Span: span, MaxRetries: 100, AckTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// logMetrics logs the services' series whose names start with prefix, to
// tell why a run fell short.
// linkerMarks folds every instance's linker series (faults.LinkerMarks:
// partitions owned and caught up, chains pending, outcomes published).
func (s *stage) linkerMarks(context.Context) (faults.LinkerMarks, error) {
	var m faults.LinkerMarks
	for _, r := range s.regs {
		mfs, err := r.Gather()
		if err != nil {
			return m, err
		}
		for _, mf := range mfs {
			for _, x := range mf.GetMetric() {
				m.Observe(mf.GetName(), x.GetGauge().GetValue()+x.GetCounter().GetValue())
			}
		}
	}
	return m, nil
}

func (s *stage) logMetrics(prefix string) {
	for i, r := range s.regs {
		mfs, err := r.Gather()
		if err != nil {
			s.t.Logf("gather: %v", err)
			continue
		}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), prefix) {
				continue
			}
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
				s.t.Logf("instance %d: %s{%s} %g", i, mf.GetName(), strings.Join(labels, ","), v)
			}
		}
	}
}
