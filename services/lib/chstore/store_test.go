package chstore_test

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/schemas"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

func TestParseOrganizations(t *testing.T) {
	const header = "identifier,org_id,name,type,developer,networks\n"
	const headerHC = "identifier,org_id,name,type,developer,networks,home_community_ids\n"
	tests := []struct {
		name    string
		in      string
		want    []chstore.Organization
		wantErr string // part of the error; "" means none
	}{
		{name: "header only", in: header},
		{name: "one", in: header + "FAC,org-fac,Riverside Clinic,Provider,Epic,north; south;\n",
			want: []chstore.Organization{{Identifier: "FAC", OrgID: "org-fac", Name: "Riverside Clinic", Type: "provider",
				Developer: "Epic", Networks: []string{"north", "south"}}}},
		{name: "quoted comma and BOM", in: "\ufeff" + header + `"A, B",o,"A, B Inc",hin,,` + "\n",
			want: []chstore.Organization{{Identifier: "A, B", OrgID: "o", Name: "A, B Inc", Type: "hin", Networks: []string{}}}},
		{name: "empty file", in: "", wantErr: "header"},
		{name: "wrong header", in: "id,name\n", wantErr: "header"},
		{name: "columns swapped", in: "org_id,identifier,name,type,developer,networks\n", wantErr: "header"},
		{name: "bad type", in: header + "X,o,n,vendor,,\n", wantErr: "line 2: type"},
		{name: "no identifier", in: header + ",o,n,provider,,\n", wantErr: "line 2: identifier"},
		{name: "no name", in: header + "X,o,,provider,,\n", wantErr: "line 2: name"},
		{name: "no org id", in: header + "X,,n,provider,,\n", wantErr: "line 2: org_id"},
		{name: "duplicate", in: header + "X,o,n,provider,,\nY,o,n,provider,,\nX,o,n,hin,,\n", wantErr: `line 4: identifier: "X" already on line 2`},
		{name: "short line", in: header + "X,o,n,provider\n", wantErr: "wrong number of fields"},
		{name: "home communities", in: headerHC + "FAC,org-fac,Riverside,provider,Epic,north,urn:oid:1.2.3; URN:OID:1.2.4;2.16.840.1\nHIE,org-hie,Exchange,hin,,north,\n",
			want: []chstore.Organization{
				{Identifier: "FAC", OrgID: "org-fac", Name: "Riverside", Type: "provider", Developer: "Epic", Networks: []string{"north"},
					HomeCommunities: []string{"urn:oid:1.2.3", "urn:oid:1.2.4", "urn:oid:2.16.840.1"}},
				{Identifier: "HIE", OrgID: "org-hie", Name: "Exchange", Type: "hin", Networks: []string{"north"}},
			}},
		{name: "bad home community", in: headerHC + "FAC,o,n,provider,,,urn:oid:1.02\n", wantErr: "line 2: home_community_ids"},
		{name: "home community not an oid", in: headerHC + "FAC,o,n,provider,,,https://gw.example/xca\n", wantErr: "not a home community id"},
		{name: "home community twice", in: headerHC + "A,o,n,provider,,,1.2.3\nB,o,n,provider,,,urn:oid:1.2.3\n", wantErr: `line 3: home_community_ids: "urn:oid:1.2.3" already on line 2`},
		{name: "home community also an identifier", in: headerHC + "urn:oid:1.2.3,o,n,provider,,,\nB,o,n,provider,,,1.2.3\n", wantErr: "already on line 2"},
		{name: "unknown seventh column", in: "identifier,org_id,name,type,developer,networks,extra\n", wantErr: "header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chstore.ParseOrganizations(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, chstore.ErrBadDirectory) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want ErrBadDirectory mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseOrganizations(f *testing.F) {
	seed, err := os.ReadFile("testdata/organizations.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add("identifier,org_id,name,type,developer,networks\n\"a\nb\",o,n,hin,,x;;y\n")
	f.Add("identifier,org_id,name,type,developer,networks,home_community_ids\na,o,n,hin,,x,urn:oid:1.2;1.3\n")
	f.Fuzz(func(t *testing.T, s string) {
		orgs, err := chstore.ParseOrganizations(strings.NewReader(s))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, o := range orgs {
			if o.Identifier == "" || o.Name == "" || o.OrgID == "" || seen[o.Identifier] || o.Networks == nil {
				t.Fatalf("accepted %+v", o)
			}
			if !slices.Contains([]string{chstore.OrgProvider, chstore.OrgHIN, chstore.OrgDeveloper}, o.Type) {
				t.Fatalf("accepted type %q", o.Type)
			}
			seen[o.Identifier] = true
			for _, c := range o.HomeCommunities {
				if canon, err := chstore.HomeCommunityID(c); err != nil || canon != c || seen[c] {
					t.Fatalf("accepted home community %q of %+v", c, o)
				}
				seen[c] = true
			}
		}
	})
}

func TestLoadOrganizations(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx := ctxT(t)
	f, err := os.Open("testdata/organizations.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	n, err := chstore.LoadOrganizations(ctx, conn, f, first)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("loaded %d identifiers, want the 7 of the file", n)
	}
	// A later load renames one organisation; the directory shows the new name
	// and still one row per identifier.
	fix := "identifier,org_id,name,type,developer,networks\nMERCY,org-mercy,Mercy General (renamed),provider,Oracle Health,north;east\n"
	if _, err := chstore.LoadOrganizations(ctx, conn, strings.NewReader(fix), first.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var rows, ids uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(identifier) FROM directory").Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if rows != 7 || ids != 7 {
		t.Errorf("directory has %d rows for %d identifiers, want 7 and 7", rows, ids)
	}
	var name string
	var networks []string
	if err := conn.QueryRow(ctx, "SELECT name, networks FROM directory WHERE identifier = 'MERCY'").Scan(&name, &networks); err != nil {
		t.Fatal(err)
	}
	if name != "Mercy General (renamed)" || !slices.Equal(networks, []string{"north", "east"}) {
		t.Errorf("MERCY = %q %v, want the second load", name, networks)
	}
	var orgs uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(org_id) FROM directory WHERE developer = 'Epic'").Scan(&orgs); err != nil {
		t.Fatal(err)
	}
	if orgs != 2 {
		t.Errorf("%d organisations with developer Epic, want 2 (the clinic and Epic itself)", orgs)
	}
	// A bad file writes nothing.
	if _, err := chstore.LoadOrganizations(ctx, conn, strings.NewReader(fix+"X,o,n,nope,,\n"), first.Add(2*time.Hour)); !errors.Is(err, chstore.ErrBadDirectory) {
		t.Errorf("bad file: %v, want ErrBadDirectory", err)
	}
	if err := conn.QueryRow(ctx, "SELECT name FROM directory WHERE identifier = 'MERCY'").Scan(&name); err != nil || name != "Mercy General (renamed)" {
		t.Errorf("after a rejected file MERCY = %q (%v)", name, err)
	}
}

// TestLoadHomeCommunities: a directory with home community ids stores each
// as an identifier of its organisation, of kind home_community, so a
// responder known only by its community is named like any other.
func TestLoadHomeCommunities(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx := ctxT(t)
	csv := "identifier,org_id,name,type,developer,networks,home_community_ids\n" +
		"FAC,org-fac,Riverside Family Clinic,provider,Epic,north,urn:oid:2.16.840.1.113883.3.7204;1.3.6.1.4.1.99\n" +
		"HIE,org-hie,Northern Health Exchange,hin,,north,\n"
	n, err := chstore.LoadOrganizations(ctx, conn, strings.NewReader(csv), time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("loaded %d identifiers, want 4 (2 organisations, 2 communities)", n)
	}
	got := dump(t, conn, "SELECT identifier, identifier_kind, org_id, name, developer FROM directory ORDER BY identifier")
	want := []string{
		"FAC|identifier|org-fac|Riverside Family Clinic|Epic|",
		"HIE|identifier|org-hie|Northern Health Exchange||",
		"urn:oid:1.3.6.1.4.1.99|home_community|org-fac|Riverside Family Clinic|Epic|",
		"urn:oid:2.16.840.1.113883.3.7204|home_community|org-fac|Riverside Family Clinic|Epic|",
	}
	if !slices.Equal(got, want) {
		t.Errorf("directory:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestInsertScorecards(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx := ctxT(t)
	march := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	card := func(network string, generated time.Time, requests uint64) *hinscorev1.Scorecard {
		return &hinscorev1.Scorecard{
			Network: network, Period: "2024-03", PeriodStartMs: march.UnixMilli(), PeriodEndMs: march.AddDate(0, 1, 0).UnixMilli(),
			Requests: requests, FormulaVersion: "f1", GeneratedAtMs: generated.UnixMilli(),
			Suspect:      &hinscorev1.Rate{Count: requests / 10, Total: requests, Rate: 0.1, CiLow: 0.08, CiHigh: 0.12},
			TimeToFulfil: &hinscorev1.Latency{Count: requests, P50Ms: 900, P90Ms: 4000, P99Ms: 30000, WithinSla: &hinscorev1.Rate{Rate: 0.97}},
		}
	}
	run1 := []*hinscorev1.Scorecard{card("north", march.AddDate(0, 1, 1), 100), card("south", march.AddDate(0, 1, 1), 50)}
	run2 := []*hinscorev1.Scorecard{card("north", march.AddDate(0, 1, 2), 120)}
	for _, cards := range [][]*hinscorev1.Scorecard{run1, run1, run2} { // run1 twice: a retry
		if err := chstore.InsertScorecards(ctx, conn, "month", cards); err != nil {
			t.Fatal(err)
		}
	}
	var history uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM scorecards FINAL").Scan(&history); err != nil {
		t.Fatal(err)
	}
	if history != 3 {
		t.Errorf("history holds %d scorecards, want 3 (the retry collapses)", history)
	}
	var requests, p90 uint64
	var js string
	if err := conn.QueryRow(ctx, "SELECT requests, ttf_p90_ms, scorecard_json FROM scorecards_latest WHERE network = 'north' AND granularity = 'month'").
		Scan(&requests, &p90, &js); err != nil {
		t.Fatal(err)
	}
	if requests != 120 || p90 != 4000 || !strings.Contains(js, `"requests":"120"`) {
		t.Errorf("latest north = %d requests, p90 %d, json %s; want the second run", requests, p90, js)
	}
}

func TestFeaturesOf(t *testing.T) {
	tests := []struct {
		v    chstore.Version
		want chstore.Features
	}{
		{chstore.Version{18, 16}, chstore.Features{}},
		{chstore.Version{19, 17}, chstore.Features{LowCardinality: true, SkippingIndexes: true}},
		{chstore.Version{20, 1}, chstore.Features{LowCardinality: true, SkippingIndexes: true, DateTime64: true}},
		{chstore.Version{25, 3}, chstore.Features{LowCardinality: true, SkippingIndexes: true, DateTime64: true, WindowFunctions: true}},
	}
	for _, tt := range tests {
		tt.want.Version = tt.v
		if got := chstore.FeaturesOf(tt.v); got != tt.want {
			t.Errorf("FeaturesOf(%s) = %+v, want %+v", tt.v, got, tt.want)
		}
	}
}

func TestServerFeatures(t *testing.T) {
	conn, _ := chtest.EmptyDatabase(t)
	f, err := chstore.ServerFeatures(ctxT(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Version.AtLeast(18, 16) {
		t.Fatalf("server %s is older than the oldest supported 18.16", f.Version)
	}
	// Whatever the server claims must actually work there: this is the
	// check that keeps the version table honest.
	if f.SkippingIndexes {
		if err := conn.Exec(ctxT(t), "CREATE TABLE probe_idx (s String, INDEX i s TYPE bloom_filter GRANULARITY 4) ENGINE = MergeTree ORDER BY tuple()"); err != nil {
			t.Errorf("server %s said to have skipping indexes: %v", f.Version, err)
		}
	} else if err := conn.Exec(ctxT(t), "CREATE TABLE probe_idx (s String, INDEX i s TYPE bloom_filter GRANULARITY 4) ENGINE = MergeTree ORDER BY tuple()"); err == nil {
		t.Errorf("server %s accepts skipping indexes but FeaturesOf says it does not", f.Version)
	}
}

// TestRollupsExact writes outcomes the way a retrying writer does (every
// version inserted twice, versions out of order) and checks that the rebuilt
// outcomes_daily and the insert-fed events_daily give exactly what the
// deduplicated views give, group by group.
func TestRollupsExact(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx := ctxT(t)
	const n = 20000
	genOutcomes(ctx, t, conn, 1, 0, n)
	genOutcomes(ctx, t, conn, 2, 0, n/2) // half the outcomes got an answer
	genOutcomes(ctx, t, conn, 1, 0, n)   // a retried batch of first versions, after the second
	genOutcomes(ctx, t, conn, 2, 0, n/2)
	var raw uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM exchange_outcomes").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw <= n {
		t.Fatalf("exchange_outcomes holds %d rows; the test needs duplicates on disk", raw)
	}
	now := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	months := []time.Time{time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC), time.Date(2024, 4, 30, 0, 0, 0, 0, time.UTC)}
	// Twice: a second rebuild must replace, not add.
	for range 2 {
		if err := chstore.RebuildRollups(ctx, conn, now, months...); err != nil {
			t.Fatal(err)
		}
	}
	const fromView = `SELECT network, toStartOfMonth(requested_at) AS m, outcome, purpose, count(),
    countIf(outcome IN ('fulfilled', 'fulfilled_late') AND ifNull(ttf_ms, 0) > 3 * sla_ms),
    quantilesExactIf(0.5, 0.9, 0.99)(ifNull(ttf_ms, 0), ttf_ms IS NOT NULL)
FROM outcomes GROUP BY network, m, outcome, purpose ORDER BY network, m, outcome, purpose`
	const fromRollup = `SELECT network, toStartOfMonth(day) AS m, outcome, purpose, countMerge(requests), sumMerge(very_late),
    quantilesExactMerge(0.5, 0.9, 0.99)(ttf)
FROM outcomes_daily GROUP BY network, m, outcome, purpose ORDER BY network, m, outcome, purpose`
	view, rollup := dump(t, conn, fromView), dump(t, conn, fromRollup)
	if len(view) == 0 || !slices.Equal(view, rollup) {
		t.Errorf("rollup differs from the view:\nview   %v\nrollup %v", head(view), head(rollup))
	}
	var total uint64
	if err := conn.QueryRow(ctx, "SELECT countMerge(requests) FROM outcomes_daily").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != n {
		t.Errorf("rollup counts %d outcomes, want %d", total, n)
	}

	// An outcome answered after the rebuild is not in the rollup until the
	// next rebuild of its month, which then has it exactly.
	genOutcomes(ctx, t, conn, 2, n/2, 100)
	if err := chstore.RebuildRollups(ctx, conn, now, months[0]); err != nil {
		t.Fatal(err)
	}
	if err := chstore.RebuildRollups(ctx, conn, now, months[1]); err != nil {
		t.Fatal(err)
	}
	if view, rollup := dump(t, conn, fromView), dump(t, conn, fromRollup); !slices.Equal(view, rollup) {
		t.Errorf("after a late answer the rollup differs:\nview   %v\nrollup %v", head(view), head(rollup))
	}
	var staging uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE 'outcomes_daily_stage_%'").Scan(&staging); err != nil || staging != 0 {
		t.Errorf("%d staging tables left behind (%v)", staging, err)
	}
}

// TestRollupsPerShard rebuilds the rollup the way a cluster must, shard by
// shard on each shard's own tables (chstore.ShardLocal), and checks that the
// shards' outcomes_daily_local merged together give exactly the single
// server's rollup of the same outcomes. Two databases of the local server
// stand for the two shards; each holds every version of its outcomes, as the
// cluster's sharding by outcome id guarantees.
func TestRollupsPerShard(t *testing.T) {
	ctx := ctxT(t)
	const n = 20000
	whole, _ := chtest.Database(t)
	shards := make([]driver.Conn, 2)
	names := make([]string, 2)
	for i := range shards {
		var d chstore.DSN
		shards[i], d = chtest.Database(t)
		names[i] = d.Database
	}
	for _, v := range []uint64{1, 2, 1} { // a retried first version after the second
		genOutcomes(ctx, t, whole, v, 0, n)
		genOutcomes(ctx, t, shards[0], v, 0, n/2)
		genOutcomes(ctx, t, shards[1], v, n/2, n-n/2)
	}
	for _, c := range shards {
		// A shard's local names, as the cluster schema gives them.
		for _, q := range []string{"RENAME TABLE outcomes_daily TO outcomes_daily_local", "CREATE VIEW outcomes_local AS SELECT * FROM outcomes"} {
			if err := c.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	now := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	months := []time.Time{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)}
	if err := chstore.RebuildRollups(ctx, whole, now, months...); err != nil {
		t.Fatal(err)
	}
	for _, c := range shards {
		for range 2 { // a second rebuild replaces, never adds
			if err := chstore.RebuildRollupsOf(ctx, c, chstore.ShardLocal, now, months...); err != nil {
				t.Fatal(err)
			}
		}
	}
	const merged = `SELECT day, network, responder_org, request_kind, outcome, exception_code,
    countMerge(requests), sumMerge(very_late), sumMerge(answered), sumMerge(within_sla),
    quantilesExactMerge(0.5, 0.9, 0.99)(ttf)
FROM %s GROUP BY day, network, responder_org, request_kind, outcome, exception_code
ORDER BY day, network, responder_org, request_kind, outcome, exception_code`
	single := dump(t, whole, fmt.Sprintf(merged, "outcomes_daily"))
	union := fmt.Sprintf("(SELECT * FROM %s.outcomes_daily_local UNION ALL SELECT * FROM %s.outcomes_daily_local)", names[0], names[1])
	sharded := dump(t, shards[0], fmt.Sprintf(merged, union))
	if len(single) == 0 || !slices.Equal(single, sharded) {
		t.Fatalf("the shards' rollups merged differ from the single server's (%d and %d groups):\nsingle  %v\nsharded %v",
			len(single), len(sharded), head(single), head(sharded))
	}
	var total uint64
	if err := shards[0].QueryRow(ctx, "SELECT countMerge(requests) FROM "+union).Scan(&total); err != nil || total != n {
		t.Fatalf("the shards' rollups count %d outcomes (%v), want %d", total, err, n)
	}
}

// TestPlainEngine: a staging table takes the rollup's engine without its
// replication arguments, which would make it a replica of the real table.
func TestPlainEngine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"AggregatingMergeTree() PARTITION BY toYYYYMM(day) ORDER BY (network, day)", "AggregatingMergeTree() PARTITION BY toYYYYMM(day) ORDER BY (network, day)"},
		{"ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/hinscore/outcomes_daily_local', '{replica}') PARTITION BY toYYYYMM(day) ORDER BY (network, day) SETTINGS index_granularity = 8192",
			"AggregatingMergeTree() PARTITION BY toYYYYMM(day) ORDER BY (network, day) SETTINGS index_granularity = 8192"},
		{"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t', '{replica}', version) ORDER BY id", "ReplacingMergeTree(version) ORDER BY id"},
	} {
		if got := chstore.PlainEngine(c.in); got != c.want {
			t.Errorf("PlainEngine(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestEventsDailyExactUnderRetries(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx := ctxT(t)
	insert := func(from, n int) {
		t.Helper()
		err := conn.Exec(ctx, `INSERT INTO exchange_events (event_id, network, role, status, exception_code, requester_org, responder_org, event_time, event_time_ms)
SELECT toUUID(UUIDNumToString(toFixedString(concat(reinterpretAsString(sipHash64(i)), reinterpretAsString(i)), 16))),
       concat('net', toString(i % 3)), ['request', 'response'][i % 2 + 1], if(i % 2 = 1, if(i % 4 = 1, 'refused', 'ok'), ''),
       if(i % 4 = 1, '171.204', ''), 'req', concat('resp', toString(i % 7)), toDateTime(1709251200 + i * 37), (1709251200 + i * 37) * 1000
FROM (SELECT number + ? AS i FROM numbers(?))`, from, n)
		if err != nil {
			t.Fatal(err)
		}
	}
	insert(0, 5000)
	insert(1000, 2000) // a retried batch
	insert(4000, 3000) // overlapping the end, and new events
	const fromView = `SELECT network, toDate(event_time) AS d, status, exception_code, count() FROM events GROUP BY network, d, status, exception_code ORDER BY network, d, status, exception_code`
	const fromRollup = `SELECT network, day AS d, status, exception_code, uniqExactMerge(messages) FROM events_daily GROUP BY network, d, status, exception_code ORDER BY network, d, status, exception_code`
	view, rollup := dump(t, conn, fromView), dump(t, conn, fromRollup)
	if len(view) == 0 || !slices.Equal(view, rollup) {
		t.Errorf("events_daily differs from the view:\nview   %v\nrollup %v", head(view), head(rollup))
	}
	var total uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExactMerge(messages) FROM events_daily").Scan(&total); err != nil || total != 7000 {
		t.Errorf("events_daily counts %d messages (%v), want 7000", total, err)
	}
	// The lookup by message id finds the event's place in the main table.
	var events uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM events WHERE (network, event_time, event_id) IN
    (SELECT network, event_time, event_id FROM events_by_message WHERE message_id = '')`).Scan(&events); err != nil || events != 7000 {
		t.Errorf("lookup by message id found %d events (%v), want 7000", events, err)
	}
}

func TestLookupsByRequestAndPatient(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx := ctxT(t)
	genOutcomes(ctx, t, conn, 1, 0, 3000)
	genOutcomes(ctx, t, conn, 2, 0, 3000)
	var outcome string
	var version uint64
	if err := conn.QueryRow(ctx, `SELECT outcome, version FROM outcomes WHERE (network, outcome_id) IN
    (SELECT network, outcome_id FROM outcomes_by_request WHERE request_id = 'R1234')`).Scan(&outcome, &version); err != nil {
		t.Fatal(err)
	}
	if version != 2 || outcome == "unanswered" {
		t.Errorf("R1234 = %s v%d, want its second version", outcome, version)
	}
	var journey uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM outcomes WHERE (network, outcome_id) IN
    (SELECT network, outcome_id FROM outcomes_by_patient FINAL WHERE patient_token = 'tok5')`).Scan(&journey); err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(slices.DeleteFunc(seq(3000), func(i int) bool { return i%997 != 5 }))); journey != want {
		t.Errorf("patient tok5 has %d requests, want %d", journey, want)
	}
}

// TestMigrationBackfills applies 001 alone, writes data, then every
// migration: the lookup tables and events_daily must include the rows that
// were there before them.
func TestMigrationBackfills(t *testing.T) {
	conn, d := chtest.EmptyDatabase(t)
	ctx := ctxT(t)
	core, err := schemas.ClickHouse.ReadFile("clickhouse/001_core.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := chstore.Migrate(ctx, conn, d.Database, fstest.MapFS{"clickhouse/001_core.sql": {Data: core}}); err != nil {
		t.Fatal(err)
	}
	genOutcomes(ctx, t, conn, 1, 0, 500)
	if err := conn.Exec(ctx, `INSERT INTO exchange_events (event_id, network, message_id, event_time)
SELECT toUUID('6032b9ab-57b1-5e3b-9fa6-d618c2b69c18'), 'north', 'M1', toDateTime('2024-03-01 10:00:00', 'UTC')`); err != nil {
		t.Fatal(err)
	}
	if err := chstore.Migrate(ctx, conn, d.Database, schemas.ClickHouse); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]uint64{
		"SELECT count() FROM outcomes_by_request FINAL":                 500,
		"SELECT count() FROM outcomes_by_patient FINAL":                 500,
		"SELECT count() FROM events_by_message WHERE message_id = 'M1'": 1,
		"SELECT uniqExactMerge(messages) FROM events_daily":             1,
	} {
		var got uint64
		if err := conn.QueryRow(ctx, q).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %d (%v), want %d", q, got, err, want)
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// TestPurposeReadsUnknownWhenNotWritten: a row written without a purpose
// (stored before migration 007, or by a writer that predates it) reads
// 'unknown' in the tables and in the outcomes view, so no reader maps "".
func TestPurposeReadsUnknownWhenNotWritten(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx := ctxT(t)
	for _, q := range []string{
		`INSERT INTO exchange_events (event_id, network) SELECT generateUUIDv4(), 'n'`,
		`INSERT INTO exchange_outcomes (outcome_id, version, network, patient_token) SELECT generateUUIDv4(), 1, 'n', 'tok'`,
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		"SELECT purpose FROM events",
		"SELECT purpose FROM outcomes",
		"SELECT purpose FROM patient_journeys",
	} {
		var p string
		if err := conn.QueryRow(ctx, q).Scan(&p); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if p != "unknown" {
			t.Errorf("%s = %q, want unknown", q, p)
		}
	}
}
