package cluster

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/hinscore/hinscore/services/harness/cluster/chschema"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/scorecard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// accountsUsers parses deploy/nats/accounts.conf with the NATS server's own
// configuration parser and returns the users of the HINSCORE account.
func accountsUsers(t *testing.T) map[string]bool {
	t.Helper()
	for user, env := range users {
		t.Setenv(env, password(user))
	}
	m, err := conf.ParseFile(filepath.Join(deployDir, "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, u := range list(dig(m, "accounts", "HINSCORE", "users")) {
		out[str(dig(u, "user"))] = true
	}
	if len(out) == 0 {
		t.Fatal("accounts.conf: no users in account HINSCORE")
	}
	return out
}

// TestNATSConfig parses deploy/nats/nats.conf (accounts.conf included) with
// the server's parser and checks the cluster's shape.
func TestNATSConfig(t *testing.T) {
	t.Setenv("POD_NAME", "nats-0")
	for user, env := range users {
		t.Setenv(env, password(user))
	}
	m, err := conf.ParseFile(filepath.Join(deployDir, "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got := str(dig(m, "server_name")); got != "nats-0" {
		t.Errorf("server_name %q, want it from POD_NAME", got)
	}
	if dig(m, "jetstream", "store_dir") == nil {
		t.Error("jetstream has no store_dir")
	}
	if routes := list(dig(m, "cluster", "routes")); len(routes) != 3 {
		t.Errorf("cluster has %d routes, want the 3 nodes", len(routes))
	}
	for _, block := range [][]string{{"tls"}, {"cluster", "tls"}} {
		if dig(m, append(block, "cert_file")...) == nil || dig(m, append(block, "ca_file")...) == nil {
			t.Errorf("%v: want TLS with a certificate and a CA", block)
		}
	}
	if v, _ := dig(m, "cluster", "tls", "verify").(bool); !v {
		t.Error("routes do not verify their peers' certificates")
	}
	if str(dig(m, "system_account")) != "SYS" {
		t.Error("no system account")
	}
	if v, _ := dig(m, "accounts", "HINSCORE", "jetstream").(string); v != "enabled" {
		t.Errorf("account HINSCORE: jetstream %v, want enabled", dig(m, "accounts", "HINSCORE", "jetstream"))
	}
	if err := monitorOnLoopback(m); err != nil {
		t.Error(err)
	}
	// The passwords come from the environment, never from the file.
	raw, _ := os.ReadFile(filepath.Join(deployDir, "nats", "accounts.conf"))
	for _, mt := range regexp.MustCompile(`password:\s*(\S+)`).FindAllStringSubmatch(string(raw), -1) {
		if !strings.HasPrefix(mt[1], "$NATS_") {
			t.Errorf("accounts.conf: password %s is not taken from the environment", mt[1])
		}
	}
	for _, u := range list(dig(m, "accounts", "HINSCORE", "users")) {
		name := str(dig(u, "user"))
		if _, ok := users[name]; !ok {
			t.Errorf("user %s has no password variable known to the tests", name)
		}
		if name != "admin" && dig(u, "permissions", "publish", "allow") == nil {
			t.Errorf("user %s may publish anything", name)
		}
	}
}

// monitorOnLoopback checks that a NATS server configuration serves its
// monitoring endpoints, which have no authentication, on loopback only, or
// not at all: http or https as [host:]port, or the port alone (which binds
// http_host, else the client listen host).
func monitorOnLoopback(m map[string]any) error {
	for _, key := range []string{"http", "https", "http_port", "https_port", "monitor_port"} {
		v, ok := m[key]
		if !ok {
			continue
		}
		host := str(m["http_host"])
		if s, isText := v.(string); isText && strings.Contains(s, ":") {
			host = s[:strings.LastIndex(s, ":")]
		} else if host == "" {
			host = listenHost(m)
		}
		if ip := net.ParseIP(strings.Trim(host, "[]")); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("NATS monitoring (%s: %v) listens on %q: want loopback (it has no authentication)", key, v, host)
		}
	}
	return nil
}

// listenHost is the host a NATS configuration's clients listen on
// (listen, else host/net, else every address).
func listenHost(m map[string]any) string {
	if l := str(m["listen"]); strings.Contains(l, ":") {
		return l[:strings.LastIndex(l, ":")]
	}
	for _, k := range []string{"host", "net"} {
		if h := str(m[k]); h != "" {
			return h
		}
	}
	return "0.0.0.0"
}

// TestLeastPrivilege connects as each service's user to a cluster running
// deploy/nats/accounts.conf and checks what it may and may not publish.
func TestLeastPrivilege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startNATS(t, ctx)
	cases := []struct {
		user, subject string
		allowed       bool
	}{
		{"mllp-ingest", "raw.northstar.hl7v2", false},
		{"mllp-ingest", "events.3.northstar", true},
		{"mllp-ingest", "dlq.mllp-ingest", true},
		{"mllp-ingest", "outcomes.northstar", false},
		{"mllp-ingest", "$JS.API.STREAM.DELETE.EVENTS", false},
		{"mllp-ingest", "$JS.API.STREAM.UPDATE.RAW", false},
		{"atna-ingest", "events.2.carequal-east", true},
		{"atna-ingest", "dlq.atna-ingest", true},
		{"atna-ingest", "dlq.mllp-ingest", false},
		{"atna-ingest", "raw.carequal-east.atna", false},
		{"atna-ingest", "outcomes.carequal-east", false},
		{"atna-ingest", "$JS.API.STREAM.UPDATE.EVENTS", false},
		{"atna-ingest", "$JS.API.CONSUMER.CREATE.EVENTS.x", false},
		{"fhir-ingest", "events.0.bayview", true},
		{"fhir-ingest", "scorecards.bayview", false},
		{"linker", "outcomes.northstar", true},
		{"linker", "events.0.northstar", false},
		{"linker", "raw.northstar.hl7v2", false},
		{"linker", "$KV.linker_leases.partition.0", true},
		{"linker", "$JS.API.STREAM.CREATE.EVENTS", false},
		{"linker", "$JS.API.STREAM.PURGE.OUTCOMES", false},
		{"chwriter", "$JS.ACK.EVENTS.chwriter_events.1.1.1.1.0", true},
		{"chwriter", "outcomes.northstar", false},
		{"chwriter", "$JS.API.CONSUMER.CREATE.RAW.x", false},
		{"api", "$JS.API.STREAM.MSG.GET.RAW", true},
		{"api", "$JS.API.STREAM.MSG.GET.EVENTS", true},
		{"api", "events.0.northstar", false},
		{"api", "$JS.API.CONSUMER.CREATE.EVENTS.x", false},
		{"api", "raw.northstar.hl7v2", false},
		{"api", "audit.api.northstar", true},
		{"api", "$KV.api_sessions.0123abcd", true},
		{"api", "$KV.linker_leases.partition.0", false},
		{"linker", "$KV.api_sessions.0123abcd", false},
		{"chwriter", "$JS.API.DIRECT.GET.KV_api_sessions.x", false},
		{"api", "$JS.API.STREAM.MSG.GET.AUDIT", false},
		{"linker", "audit.api.northstar", false},
		{"chwriter", "audit.api.northstar", false},
		{"scorecard", "scorecards.northstar", true},
		{"scorecard", "outcomes.northstar", false},
	}
	for _, tc := range cases {
		t.Run(tc.user+" "+tc.subject, func(t *testing.T) {
			refused := make(chan error, 4)
			nc, err := nats.Connect(userURL(c, tc.user), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				refused <- err
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if err := nc.Publish(tc.subject, nil); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-refused:
				if tc.allowed || !errors.Is(err, nats.ErrPermissionViolation) {
					t.Errorf("publish refused: %v (allowed: %t)", err, tc.allowed)
				}
			case <-time.After(300 * time.Millisecond):
				if !tc.allowed {
					t.Error("publish was not refused")
				}
			}
		})
	}
}

// TestServicesCheckProvisionedStreams starts every NATS service's stream
// set-up as its own user of accounts.conf against streams provisioned by
// admin: HINSCORE_STREAMS=check passes (the user may read the info of each
// stream it uses), the default ensure is refused (it may not change them).
func TestServicesCheckProvisionedStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, _, _ := provisionedCluster(t, ctx)
	for _, user := range []string{"mllp-ingest", "atna-ingest", "fhir-ingest", "linker", "chwriter", "api", "scorecard"} {
		for _, mode := range []string{"check", "ensure"} {
			env := service.MapEnv(map[string]string{bus.EnvNATSURL: userURL(c, user), bus.EnvStreams: mode, bus.EnvStreamReplicas: "3"})
			// A refused JetStream API call gets no answer: it ends with
			// the context.
			cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
			_, closer, err := bus.ConnectFromEnv(cctx, env, user)
			if closer != nil {
				_ = closer.Shutdown(cctx)
			}
			ccancel()
			switch {
			case mode == "check" && err != nil:
				t.Errorf("%s, check: %v", user, err)
			case mode == "ensure" && err == nil:
				t.Errorf("%s, ensure: its user changed the provisioned streams", user)
			}
		}
	}
}

// TestScorecardServiceAsItsUser runs the scorecard service's composition
// as the scorecard user of accounts.conf against the provisioned streams:
// its stream check passes, and a run (which reads back what SCORECARDS
// already holds through an ordered consumer, then publishes) is allowed.
func TestScorecardServiceAsItsUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, v, _ := provisionedCluster(t, ctx)
	js, closer, err := bus.NATS{URL: userURL(c, "scorecard"), Streams: "check", StreamReplicas: 3}.Connect(ctx, "scorecard", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Shutdown(ctx)
	// A card already on the stream, so that the run reads it back.
	if _, err := js.Publish(ctx, bus.ScorecardSubject("northstar"), []byte("card")); err != nil {
		t.Fatal(err)
	}
	ch, _ := chtest.Database(t)
	cfg := scorecard.DefaultServiceConfig()
	cfg.Out = t.TempDir()
	s, err := scorecard.NewService(cfg, service.Deps{JetStream: js, ClickHouse: ch, Log: zerolog.Nop(), Metrics: prometheus.NewRegistry(), Clock: service.SystemClock{}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	if err := s.RunOnce(rctx); err != nil {
		t.Fatalf("a run as the scorecard user: %v", err)
	}
	v.check(t)
}

// TestGeneratedStreamFilesAreCurrent fails when deploy/nats/streams or
// deploy/k8s/base/nats-streams.yaml no longer is what the code generates.
func TestGeneratedStreamFilesAreCurrent(t *testing.T) {
	files, err := StreamFiles()
	if err != nil {
		t.Fatal(err)
	}
	on, _ := filepath.Glob(filepath.Join(deployDir, "nats", "streams", "*.json"))
	if len(on) != len(files) {
		t.Errorf("deploy/nats/streams holds %d files, the code makes %d", len(on), len(files))
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(deployDir, "nats", "streams", name+".json"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("deploy/nats/streams/%s.json is stale (%v): run `go run ./cmd/deploygen` in services/harness/cluster", name, err)
		}
	}
	want, err := StreamsManifest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(deployDir, "k8s", "base", "nats-streams.yaml"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("deploy/k8s/base/nats-streams.yaml is stale (%v): run `go run ./cmd/deploygen` in services/harness/cluster", err)
	}
	for _, cfg := range StreamConfigs() {
		if cfg.Replicas != 3 {
			t.Errorf("%s: %d replicas, want 3", cfg.Name, cfg.Replicas)
		}
		if (cfg.Name == "RAW" || cfg.Name == "DLQ") && (cfg.MaxAge == 0 || cfg.MaxBytes <= 0) {
			t.Errorf("%s: retention by age %s and size %d, want both", cfg.Name, cfg.MaxAge, cfg.MaxBytes)
		}
		// EVENTS holds HL7 v2 messages' original bytes: RAW's age limit,
		// but no size cap, which would discard events not yet consumed.
		if cfg.Name == "EVENTS" && (cfg.MaxAge != ClusterStreamOptions().RawMaxAge || cfg.MaxBytes > 0) {
			t.Errorf("EVENTS: retention by age %s and size %d, want RAW's age and no size cap", cfg.MaxAge, cfg.MaxBytes)
		}
	}
}

// xmlNode is a generic XML element.
type xmlNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Content  string     `xml:",chardata"`
	Children []xmlNode  `xml:",any"`
}

func (n xmlNode) child(name string) *xmlNode {
	for i := range n.Children {
		if n.Children[i].XMLName.Local == name {
			return &n.Children[i]
		}
	}
	return nil
}

func readXML(t *testing.T, path string) xmlNode {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n xmlNode
	if err := xml.Unmarshal(data, &n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if n.XMLName.Local != "yandex" {
		t.Errorf("%s: root <%s>, want <yandex> (ClickHouse 18.16)", path, n.XMLName.Local)
	}
	return n
}

// clickhouseUsers returns the users every ClickHouse file defines.
func clickhouseUsers(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for name := range clickhouseUserNodes(t) {
		out[name] = true
	}
	return out
}

// TestClickHouseConfig checks every XML file under deploy/clickhouse: it
// parses, the cluster matches the generated schema's, the users exist with
// the rights they need.
func TestClickHouseConfig(t *testing.T) {
	var paths []string
	err := filepath.WalkDir(filepath.Join(deployDir, "clickhouse"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".xml") {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		readXML(t, p)
	}
	rs := readXML(t, filepath.Join(deployDir, "clickhouse", "cluster", "config.d", "remote_servers.xml"))
	cluster := rs.child("remote_servers").child(chschema.DefaultOptions().Cluster)
	if cluster == nil {
		t.Fatalf("remote_servers has no cluster %s, the one schema.sql uses", chschema.DefaultOptions().Cluster)
	}
	shards := 0
	for _, s := range cluster.Children {
		if s.XMLName.Local != "shard" {
			continue
		}
		shards++
		replicas := 0
		for _, r := range s.Children {
			if r.XMLName.Local == "replica" {
				replicas++
			}
		}
		if replicas < 2 || strings.TrimSpace(s.child("internal_replication").Content) != "true" {
			t.Errorf("shard %d: %d replicas, internal_replication %q: want 2+ replicas copied by ReplicatedMergeTree", shards, replicas, s.child("internal_replication").Content)
		}
	}
	if shards < 2 {
		t.Errorf("%d shards, want at least 2", shards)
	}
	macros := readXML(t, filepath.Join(deployDir, "clickhouse", "cluster", "config.d", "macros.xml")).child("macros")
	for _, m := range []string{"shard", "replica"} {
		if macros == nil || macros.child(m) == nil {
			t.Errorf("macros.xml lacks {%s}, which schema.sql's ZooKeeper paths use", m)
		}
	}
	users := clickhouseUsers(t)
	for _, u := range []string{"writer", "analyst", "api"} {
		if !users[u] {
			t.Errorf("no ClickHouse user %s", u)
		}
	}
	hs := readXML(t, filepath.Join(deployDir, "clickhouse", "cluster", "users.d", "hinscore.xml"))
	api := hs.child("users").child("api")
	if api == nil || hs.child("profiles").child(strings.TrimSpace(api.child("profile").Content)).child("readonly") == nil {
		t.Error("user api must use a readonly profile")
	}
	an := readXML(t, filepath.Join(deployDir, "clickhouse", "users.d", "analyst.xml")).child("users").child("analyst")
	if an == nil || strings.TrimSpace(an.child("profile").Content) != "readonly" {
		t.Error("user analyst must use the readonly profile")
	}
}

// TestObservability checks the dashboard and the alert rules against the
// metrics the services export.
func TestObservability(t *testing.T) {
	metrics := exportedMetrics(t)
	titles := map[string]bool{}
	for _, p := range readDashboard(t) {
		titles[p.Title] = true
		for _, tg := range p.Targets {
			if tg.Expr != "" {
				checkPromQL(t, "panel "+p.Title, tg.Expr, metrics)
			}
			if tg.RawSQL != "" && !strings.Contains(tg.RawSQL, "FROM outcomes ") {
				t.Errorf("panel %s: SQL should read the deduplicated outcomes view", p.Title)
			}
		}
	}
	for _, want := range []string{"Ingest rate by network", "ACK latency", "Pipeline lag", "Pending chains", "DLQ growth", "ClickHouse insert latency"} {
		found := false
		for title := range titles {
			found = found || strings.HasPrefix(title, want)
		}
		if !found {
			t.Errorf("the dashboard has no %q panel", want)
		}
	}

	raw, err := os.ReadFile(filepath.Join(deployDir, "observability", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr, For string
				Labels           map[string]string
				Annotations      map[string]string
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			checkPromQL(t, "alert "+r.Alert, r.Expr, metrics)
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: want a severity label and a summary", r.Alert)
			}
		}
	}
	for _, want := range []string{"HinscoreAckTimeouts", "HinscoreLinkerLag", "HinscoreWriterLag", "HinscoreDLQGrowth", "HinscoreUnansweredSpike"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}
