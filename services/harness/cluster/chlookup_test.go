package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/api"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
)

// assertLookups starts the api as the ClickHouse user `api` on server 1-1
// (so that most of what it reads is on the other shard or the other
// replica) and checks its chain and journey lookups against the outcomes
// view: the requests of the patients with the most requests, and the
// chains of a sample of control ids, each exactly the outcomes' set.
func (c *chCluster) assertLookups(t *testing.T, ctx context.Context, s *stage) {
	out, err := c.script(ctx, nil, "dsn", "api")
	if err != nil {
		t.Fatal(err)
	}
	dsns := strings.Fields(out)
	if len(dsns) != 4 {
		t.Fatalf("chcluster.sh dsn api: %q", out)
	}
	d, err := chstore.ParseDSN(dsns[3])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := chstore.Connect(ctx, d, d.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const token = "cluster-test-investigator-token"
	cfg, err := api.ConfigFromEnv(service.MapEnv(map[string]string{
		"HINSCORE_API_TOKENS":    "ivy=investigator:" + api.HashToken(token),
		"HINSCORE_API_ADDR":      "127.0.0.1:0",
		"HINSCORE_API_AUDIT_LOG": filepath.Join(t.TempDir(), "audit.jsonl"),
		"HINSCORE_API_RATE":      "1000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	_, js := s.v.connect(t, s.nats, "api")
	srv, err := api.New(cfg, service.Deps{JetStream: js, ClickHouse: conn, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Metrics: prometheus.NewRegistry(), Clock: service.SystemClock{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	get := func(path string, q url.Values, v any) error {
		return apiGet(ctx, "http://"+srv.Addr()+path+"?"+q.Encode(), token, v)
	}
	c.assertJourneys(t, ctx, get)
	c.assertChains(t, ctx, get)
}

// assertJourneys compares the journeys of the 20 patients with the most
// requests with the outcomes view.
func (c *chCluster) assertJourneys(t *testing.T, ctx context.Context, get func(string, url.Values, any) error) {
	want := c.groups(t, ctx, `SELECT patient_token, toString(outcome_id) FROM outcomes WHERE patient_token IN
		(SELECT patient_token FROM outcomes WHERE patient_token != '' GROUP BY patient_token ORDER BY count() DESC, patient_token LIMIT 20)`)
	if len(want) == 0 {
		t.Fatal("no outcome names a patient")
	}
	requests := 0
	for tok, ids := range want {
		var j api.Journey
		if err := get("/v1/patients/"+tok+"/journey", nil, &j); err != nil {
			t.Errorf("journey %s: %v", tok, err)
			continue
		}
		if got := sortedIDs(j.Requests); !slices.Equal(got, ids) {
			t.Errorf("journey %s: the api gives %d requests %v, the outcomes view %d %v", tok, len(got), got, len(ids), ids)
		}
		requests += len(ids)
	}
	t.Logf("journeys of %d patients (%d requests) agree with the outcomes view", len(want), requests)
}

// assertChains compares the chains the api finds by control id (its
// search through outcomes_by_request) and by outcome id with the outcomes
// view, for 50 control ids.
func (c *chCluster) assertChains(t *testing.T, ctx context.Context, get func(string, url.Values, any) error) {
	want := c.groups(t, ctx, `SELECT network || ' ' || request_id, toString(outcome_id) FROM outcomes
		WHERE request_id IN (SELECT request_id FROM outcomes ORDER BY cityHash64(request_id) LIMIT 50)`)
	for key, ids := range want {
		network, control, _ := strings.Cut(key, " ")
		var res api.SearchResult
		if err := get("/v1/chains", url.Values{"control_id": {control}, "network": {network}, "limit": {"100"}}, &res); err != nil {
			t.Errorf("chains of %s: %v", key, err)
			continue
		}
		if got := sortedIDs(res.Chains); !slices.Equal(got, ids) {
			t.Errorf("chains of control id %s: the api gives %v, the outcomes view %v", key, got, ids)
		}
		for _, id := range ids {
			var o api.ChainView
			if err := get("/v1/chains/"+id, nil, &o); err != nil {
				t.Errorf("chain %s: %v", id, err)
			}
		}
	}
	t.Logf("chains of %d control ids agree with the outcomes view", len(want))
}

func sortedIDs(outcomes []api.Outcome) []string {
	ids := make([]string, 0, len(outcomes))
	for _, o := range outcomes {
		ids = append(ids, o.ID)
	}
	slices.Sort(ids)
	return ids
}

// groups reads (key, id) rows into key → sorted ids.
func (c *chCluster) groups(t *testing.T, ctx context.Context, q string) map[string][]string {
	t.Helper()
	rows, err := c.nodes[0].Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var k, id string
		if err := rows.Scan(&k, &id); err != nil {
			t.Fatal(err)
		}
		out[k] = append(out[k], id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

// apiGet is one authenticated GET decoded into v; a status other than
// 200 is an error with the body.
func apiGet(ctx context.Context, u, token string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %.300s", u, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}
