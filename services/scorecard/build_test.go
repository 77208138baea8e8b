package scorecard

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testDatabase returns a connection to a fresh, migrated database of its
// own on the test server (dropped when the test ends).
func testDatabase(t *testing.T) driver.Conn {
	t.Helper()
	conn, _ := chtest.Database(t)
	return conn
}

// row is one version of one outcome.
type row struct {
	id        uuid.UUID
	version   uint64
	network   string
	kind      string
	outcome   string
	exception string
	at        time.Time
	ttfMs     *uint64
}

func ttf(ms uint64) *uint64 { return &ms }

func insert(t *testing.T, conn driver.Conn, rows []row) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id,
		request_kind, responder_org, outcome, exception_code, requested_at, requested_at_ms, ttf_ms, sla_ms, grace_ms)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if err := b.Append(r.id, r.version, r.network, fmt.Sprintf("req-%d", i), r.kind, "ORG_1",
			r.outcome, r.exception, r.at, r.at.UnixMilli(), r.ttfMs, uint64(60_000), uint64(30_000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func id(n int) uuid.UUID {
	var u uuid.UUID
	u[14], u[15] = byte(n>>8), byte(n)
	return u
}

// fixture is a small world with known figures:
//
// alpha, 2026-11-22: 30 fulfilled (1..30 s), 4 fulfilled_late (70, 130,
// 190, 250 s; the 130 s one first stored as unanswered, version 1), 2
// refused_unjustified, 1 redirected, 2 unanswered, 1 refused_exception and
// 1 not_found (record_query): 41 requests, plus 1 orphan.
// beta, 2026-11-22: 5 fulfilled (small sample).
// gamma: one request on each of 2026-12-28, 2027-01-01, 2027-01-03 (ISO
// week 2026-W53) and 2027-01-04 00:00:00 (2027-W01).
func fixture() []row {
	d := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var rows []row
	n := 0
	add := func(network, kind, outcome, exc string, at time.Time, ms *uint64) {
		n++
		rows = append(rows, row{id(n), 1, network, kind, outcome, exc, at, ms})
	}
	for i := range 30 {
		add("alpha", "patient_query", "fulfilled", "", d.Add(time.Duration(i)*time.Minute), ttf(uint64(i+1)*1000))
	}
	for _, ms := range []uint64{70_000, 190_000, 250_000} {
		add("alpha", "patient_query", "fulfilled_late", "", d, ttf(ms))
	}
	add("alpha", "patient_query", "unanswered", "", d, nil)
	rows = append(rows, row{rows[len(rows)-1].id, 2, "alpha", "patient_query", "fulfilled_late", "", d, ttf(130_000)})
	add("alpha", "patient_query", "refused_unjustified", "", d, nil)
	add("alpha", "patient_query", "refused_unjustified", "", d, nil)
	add("alpha", "patient_query", "redirected", "redirect-portal", d, nil)
	add("alpha", "patient_query", "unanswered", "", d, nil)
	add("alpha", "patient_query", "unanswered", "", d, nil)
	add("alpha", "patient_query", "refused_exception", "171.204", d, nil)
	add("alpha", "record_query", "not_found", "", d.Add(14*time.Hour+59*time.Minute), nil)
	add("alpha", "", "orphan", "", d, nil)
	for range 5 {
		add("beta", "patient_query", "fulfilled", "", d, ttf(500))
	}
	add("gamma", "patient_query", "fulfilled", "", time.Date(2026, 12, 28, 10, 0, 0, 0, time.UTC), ttf(1000))
	add("gamma", "patient_query", "fulfilled", "", time.Date(2027, 1, 1, 23, 59, 59, 0, time.UTC), ttf(1000))
	add("gamma", "patient_query", "not_found", "", time.Date(2027, 1, 3, 12, 0, 0, 0, time.UTC), nil)
	add("gamma", "patient_query", "fulfilled", "", time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC), ttf(2000))
	return rows
}

var testNow = time.Date(2027, 2, 1, 12, 0, 0, 0, time.UTC)

func TestBuild(t *testing.T) {
	conn := testDatabase(t)
	insert(t, conn, fixture())
	ctx := context.Background()

	t.Run("day alpha", func(t *testing.T) { testBuildDayAlpha(t, ctx, conn) })

	t.Run("all networks by day", func(t *testing.T) {
		cards, err := Build(ctx, conn, Query{Granularity: Day}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cards {
			got = append(got, fmt.Sprintf("%s/%s/%d", c.Network, c.Period, c.Requests))
		}
		want := "alpha/2026-11-22/41 beta/2026-11-22/5 gamma/2026-12-28/1 gamma/2027-01-01/1 gamma/2027-01-03/1 gamma/2027-01-04/1"
		if strings.Join(got, " ") != want {
			t.Errorf("cards %v\nwant %s", got, want)
		}
		beta := cards[1]
		if !beta.Suspect.SmallSample || beta.TimeToFulfil.P50Ms != 500 || beta.TimeToFulfil.WithinSla.Rate != 1 {
			t.Errorf("beta %v", beta)
		}
		var buf bytes.Buffer
		if err := PrintTable(&buf, cards); err != nil {
			t.Fatal(err)
		}
		golden(t, "table-day.txt", buf.Bytes())
	})

	tests := []struct {
		name string
		q    Query
		want string
	}{
		{"iso weeks", Query{Granularity: Week, Network: "gamma"}, "gamma/2026-W53/3 gamma/2027-W01/1"},
		{"months", Query{Granularity: Month, Network: "gamma"}, "gamma/2026-12/1 gamma/2027-01/3"},
		{"time range", Query{Granularity: Day, From: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)},
			"gamma/2027-01-01/1 gamma/2027-01-03/1"},
		{"unknown network", Query{Granularity: Month, Network: "delta' OR 1=1 --"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cards, err := Build(ctx, conn, tt.q, testNow)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cards {
				got = append(got, fmt.Sprintf("%s/%s/%d", c.Network, c.Period, c.Requests))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("cards %v, want %s", got, tt.want)
			}
		})
	}
}

// testBuildDayAlpha checks the fixture's day of the alpha network figure
// by figure, and its file against the golden one.
func testBuildDayAlpha(t *testing.T, ctx context.Context, conn driver.Conn) {
	cards, err := Build(ctx, conn, Query{Granularity: Day, Network: "alpha"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 1 {
		t.Fatalf("%d cards, want 1", len(cards))
	}
	c := cards[0]
	if c.Network != "alpha" || c.Period != "2026-11-22" || c.Requests != 41 {
		t.Errorf("card %s %s with %d requests", c.Network, c.Period, c.Requests)
	}
	wantCounts := map[string]uint64{
		"fulfilled": 30, "fulfilled_late": 4, "refused_unjustified": 2, "redirected": 1,
		"unanswered": 2, "refused_exception": 1, "not_found": 1, "orphan": 1,
	}
	if len(c.Outcomes) != 12 {
		t.Errorf("%d class rates, want all 12 classes", len(c.Outcomes))
	}
	for _, o := range c.Outcomes {
		want := wantCounts[o.Outcome]
		total := uint64(41)
		if o.Outcome == "orphan" {
			total = 42
		}
		low, high := Wilson(want, total)
		r := o.Rate
		if r.Count != want || r.Total != total || r.Rate != float64(want)/float64(total) || r.CiLow != low || r.CiHigh != high || r.SmallSample {
			t.Errorf("%s: %v, want %d/%d", o.Outcome, r, want, total)
		}
	}
	// Sorted times to fulfil: 1..30 s, 70, 130, 190, 250 s (34 values);
	// quantileExact picks element floor(level * 34).
	l := c.TimeToFulfil
	if l.Count != 34 || l.P50Ms != 18_000 || l.P90Ms != 70_000 || l.P99Ms != 250_000 {
		t.Errorf("time to fulfil %v", l)
	}
	if l.WithinSla.Count != 30 || l.WithinSla.Total != 34 {
		t.Errorf("within SLA %v", l.WithinSla)
	}
	// 2 unjustified + 1 redirected + 2 unanswered + 190 s and 250 s (> 3 x 60 s).
	if c.Suspect.Count != 7 || c.Suspect.Total != 41 {
		t.Errorf("suspect %v", c.Suspect)
	}
	if len(c.Volumes) != 2 || c.Volumes[0].RequestKind != "patient_query" || c.Volumes[0].Requests != 40 ||
		c.Volumes[1].RequestKind != "record_query" || c.Volumes[1].Requests != 1 {
		t.Errorf("volumes %v", c.Volumes)
	}
	if c.FormulaVersion != FormulaVersion || c.GeneratedAtMs != testNow.UnixMilli() ||
		c.PeriodStartMs != time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).UnixMilli() ||
		c.PeriodEndMs-c.PeriodStartMs != 24*3600*1000 {
		t.Errorf("card header %v", c)
	}

	dir := t.TempDir()
	if err := WriteFiles(dir, cards); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "2026-11-22", "alpha.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "alpha-2026-11-22.json", got)
	var back hinscorev1.Scorecard
	// The file is the operator's copy of the card.
	if err := protojson.Unmarshal(got, &back); err != nil || !proto.Equal(&back, OperatorCopy(c)) {
		t.Errorf("JSON does not round-trip: %v", err)
	}
}

func TestBuildRejectsBadQuery(t *testing.T) {
	for _, q := range []Query{
		{Granularity: "year"},
		{Granularity: Day, From: testNow, To: testNow.Add(-time.Hour)},
	} {
		if _, err := Build(context.Background(), nil, q, testNow); err == nil {
			t.Errorf("Build(%+v) succeeded", q)
		}
	}
}

func TestWriteFilesRejectsUnsafeNames(t *testing.T) {
	for _, network := range []string{"../escape", "", "a/b"} {
		c := &hinscorev1.Scorecard{Network: network, Period: "2026-11-22"}
		if err := WriteFiles(t.TempDir(), []*hinscorev1.Scorecard{c}); err == nil {
			t.Errorf("WriteFiles accepted network %q", network)
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n%s", name, got)
	}
}
