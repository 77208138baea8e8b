package api

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// oldJourney is how journeys were read before patient_journeys (migration
// 006): the keys from outcomes_by_patient, the rows from exchange_outcomes
// by its (network, outcome_id) key, newest first.
func oldJourney(ctx context.Context, s *store, token string, networks []string, limit int) ([]Outcome, error) {
	q := `SELECT ` + outcomeColumns + ` FROM exchange_outcomes
		WHERE (network, outcome_id) IN (SELECT network, outcome_id FROM outcomes_by_patient WHERE patient_token = ?)
		  AND patient_token = ?`
	args := []any{token, token}
	if networks != nil {
		q += ` AND has(?, network)`
		args = append(args, networks)
	}
	q += ` ORDER BY version DESC LIMIT 1 BY outcome_id`
	q = `SELECT * FROM (` + q + `) ORDER BY requested_at_ms DESC, id DESC LIMIT ?`
	return s.outcomes(ctx, "old journey", q, append(args, limit)...)
}

// journeyRow is one version of an outcome as the linker would write it.
type journeyRow struct {
	id      string
	version uint64
	network string
	token   string
	class   string
	atMs    int64
}

// journeyWorld names TestJourneyLookup's patients and times.
type journeyWorld struct {
	tokA, tokB, tokC string
	t0, hour         int64
}

func newJourneyWorld() journeyWorld {
	return journeyWorld{tokA: strings.Repeat("a", 64), tokB: strings.Repeat("b", 64), tokC: strings.Repeat("c", 64),
		t0: time.Date(2026, 1, 30, 23, 0, 0, 0, time.UTC).UnixMilli(), hour: int64(time.Hour / time.Millisecond)}
}

// id is the outcome id of name.
func (journeyWorld) id(name string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)).String()
}

// TestJourneyLookup checks the journey read through patient_journeys
// against the deduplicated truth (every row of exchange_outcomes, the
// highest version of each outcome, computed here and read from the
// outcomes view) and against the query it replaced, on outcomes with
// superseded versions (merged and not), a version written twice, versions
// that change the patient token, a version the lookup table has not seen
// yet, operator scopes, and a journey longer than journeyLimit.
func TestJourneyLookup(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	jw := newJourneyWorld()
	seedJourneys(t, ctx, conn, jw)

	s := &store{conn: conn}
	check := func(t *testing.T) {
		checkJourneysAgainstTruth(t, ctx, conn, s, jw)
		checkJourneysKnown(t, ctx, s, jw)
	}
	t.Run("unmerged", check)
	for _, table := range []string{"exchange_outcomes", "outcomes_by_patient", "patient_journeys", "outcome_versions"} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("merged", check)
}

// seedJourneys writes TestJourneyLookup's outcomes, each insert a part of
// its own.
func seedJourneys(t *testing.T, ctx context.Context, conn driver.Conn, jw journeyWorld) {
	t.Helper()
	tokA, tokB, tokC, t0, hour, id := jw.tokA, jw.tokB, jw.tokC, jw.t0, jw.hour, jw.id
	// Each insert is a part of its own: nothing is merged until OPTIMIZE.
	rows := []journeyRow{
		{id("retried"), 1, "northstar", tokA, "unanswered", t0},
		{id("retried"), 2, "northstar", tokA, "fulfilled_late", t0},
		{id("twice"), 1, "northstar", tokA, "fulfilled", t0 + hour},
		{id("twice"), 1, "northstar", tokA, "fulfilled", t0 + hour},
		{id("bayview"), 1, "bayview", tokA, "refused_unjustified", t0 + 2*hour},
		// An orphan answer naming A, then its request naming B.
		{id("to-b"), 1, "northstar", tokA, "orphan", t0 + 3*hour},
		{id("to-b"), 2, "northstar", tokB, "fulfilled", t0 + 3*hour},
		// A token only from the second version on.
		{id("from-none"), 1, "northstar", "", "unanswered", t0 + 4*hour},
		{id("from-none"), 2, "northstar", tokA, "fulfilled", t0 + 4*hour},
		// A token the latest version no longer carries.
		{id("to-none"), 1, "northstar", tokA, "unanswered", t0 + 5*hour},
		{id("to-none"), 2, "northstar", "", "unanswered", t0 + 5*hour},
		// Three versions, the same request time as "tie": id order decides.
		{id("three"), 1, "northstar", tokA, "unanswered", t0 + 6*hour},
		{id("three"), 2, "northstar", tokA, "refused_unjustified", t0 + 6*hour},
		{id("three"), 3, "northstar", tokA, "redirected", t0 + 6*hour},
		{id("tie"), 1, "bayview", tokA, "not_found", t0 + 6*hour},
		{id("b-only"), 1, "northstar", tokB, "fulfilled", t0 + 7*hour},
		// The newest of C's long journey moves to B.
		{id("c-to-b"), 1, "northstar", tokC, "unanswered", t0 + 10000*hour},
		{id("c-to-b"), 2, "northstar", tokB, "fulfilled", t0 + 10000*hour},
	}
	for _, r := range rows {
		insertJourneyRow(t, ctx, conn, r)
	}
	// C: journeyLimit + 100 outcomes over three months, three to a request
	// time, every 7th with a second version.
	longJourney := `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, correlation_key,
		request_kind, requester_org, responder_org, outcome, exception_code, reason_codes, patient_token, requested_at,
		requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms, decided_at_ms, rule_version,
		mapping_version, response_id, record_count, step_count)
	SELECT toUUID(UUIDNumToString(MD5(concat('c', toString(number))))), %[1]d, if(number %% 2 = 0, 'northstar', 'bayview'),
		concat('REQ', toString(number)), concat('X|REQ', toString(number)), 'patient_query', 'CLINIC_01', 'HOSP_1',
		%[2]s, '', [], '%[3]s', toDateTime(intDiv(at, 1000)), at, at + 100, at + 900, toNullable(toUInt64(100)),
		toNullable(toUInt64(900)), 60000, 30000, at + 900, 'link/1', 'hl7v2-map/1', concat('RSP', toString(number)), 1, 2
	FROM (SELECT number, toInt64(%[4]d + intDiv(number, 3) * %[5]d) AS at FROM system.numbers LIMIT %[6]d) %[7]s`
	if err := conn.Exec(ctx, fmt.Sprintf(longJourney, 1, "'unanswered'", tokC, t0, hour, journeyLimit+100, "")); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, fmt.Sprintf(longJourney, 2, "'fulfilled_late'", tokC, t0, hour, journeyLimit+100, "WHERE number % 7 = 0")); err != nil {
		t.Fatal(err)
	}
	// A version that patient_journeys has not seen yet (its materialized
	// view runs after the one of outcome_versions, or failed): the lookup
	// marks the outcome superseded and reads it again from exchange_outcomes.
	insertJourneyRow(t, ctx, conn, journeyRow{id("late"), 1, "northstar", tokA, "unanswered", t0 + 8*hour})
	insertJourneyRow(t, ctx, conn, journeyRow{id("late-c"), 1, "northstar", tokC, "unanswered", t0 + 9000*hour})
	if err := conn.Exec(ctx, "DETACH TABLE patient_journeys_mv"); err != nil {
		t.Fatal(err)
	}
	insertJourneyRow(t, ctx, conn, journeyRow{id("late"), 2, "northstar", tokA, "fulfilled", t0 + 8*hour})
	insertJourneyRow(t, ctx, conn, journeyRow{id("late-c"), 2, "northstar", tokC, "fulfilled", t0 + 9000*hour})
	if err := conn.Exec(ctx, "ATTACH TABLE patient_journeys_mv"); err != nil {
		t.Fatal(err)
	}
}

// checkJourneysAgainstTruth compares every token's journey in every scope
// with the latest versions in exchange_outcomes, with the outcomes view
// and with the query it replaced.
func checkJourneysAgainstTruth(t *testing.T, ctx context.Context, conn driver.Conn, s *store, jw journeyWorld) {
	t.Helper()
	tokA, tokB, tokC, id := jw.tokA, jw.tokB, jw.tokC, jw.id
	// The outcomes whose latest version no longer names the token: the
	// query this one replaced listed their superseded versions under it.
	stale := map[string]map[string]bool{tokA: {id("to-b"): true, id("to-none"): true}, tokC: {id("c-to-b"): true}}
	for _, tok := range []string{tokA, tokB, tokC, strings.Repeat("d", 64)} {
		for _, scope := range [][]string{nil, {"northstar"}, {"bayview"}} {
			name := fmt.Sprintf("%s…/%v", tok[:4], scope)
			got, err := s.journey(ctx, tok, scope)
			if err != nil {
				t.Fatal(err)
			}
			want := truthJourney(t, ctx, conn, tok, scope)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: journey differs from the latest versions in exchange_outcomes:\n%s", name, journeyDiff(got, want))
			}
			if view := viewJourney(t, ctx, conn, tok, scope); !reflect.DeepEqual(got, view) {
				t.Errorf("%s: journey differs from the outcomes view:\n%s", name, journeyDiff(got, view))
			}
			old, err := oldJourney(ctx, s, tok, scope, journeyLimit+len(stale[tok]))
			if err != nil {
				t.Fatal(err)
			}
			old = dropIDs(old, stale[tok])
			old = old[:min(len(old), journeyLimit)]
			sort.SliceStable(old, func(i, j int) bool { return old[i].RequestedAtMs < old[j].RequestedAtMs })
			if !reflect.DeepEqual(got, old) {
				t.Errorf("%s: journey differs from the query it replaced:\n%s", name, journeyDiff(got, old))
			}
		}
	}
}

// checkJourneysKnown checks A's journey, outcome by outcome, and that C's
// is cut at journeyLimit.
func checkJourneysKnown(t *testing.T, ctx context.Context, s *store, jw journeyWorld) {
	t.Helper()
	tokA, tokC, id := jw.tokA, jw.tokC, jw.id
	a, err := s.journey(ctx, tokA, nil)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{}
	for _, o := range a {
		versions[o.ID] = fmt.Sprintf("v%d %s", o.Version, o.Class)
	}
	if want := map[string]string{
		id("retried"): "v2 fulfilled_late", id("twice"): "v1 fulfilled", id("bayview"): "v1 refused_unjustified",
		id("from-none"): "v2 fulfilled", id("three"): "v3 redirected", id("tie"): "v1 not_found", id("late"): "v2 fulfilled",
	}; !reflect.DeepEqual(versions, want) {
		t.Errorf("A's journey %v, want %v", versions, want)
	}
	c, err := s.journey(ctx, tokC, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != journeyLimit || c[len(c)-1].ID != id("late-c") || c[len(c)-1].Version != 2 {
		t.Errorf("C's journey has %d requests, the last %+v; want %d ending with late-c v2", len(c), c[len(c)-1], journeyLimit)
	}
}

func insertJourneyRow(t *testing.T, ctx context.Context, conn driver.Conn, r journeyRow) {
	t.Helper()
	var ttf any
	if strings.HasPrefix(r.class, "fulfilled") {
		ttf = uint64(900 * r.version)
	}
	err := conn.Exec(ctx, `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, correlation_key,
		request_kind, requester_org, responder_org, outcome, exception_code, reason_codes, patient_token, requested_at,
		requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms, decided_at_ms, rule_version,
		mapping_version, response_id, record_count, step_count)
	SELECT toUUID(?), ?, ?, ?, ?, 'patient_query', 'CLINIC_01', ?, ?, '', ?, ?, toDateTime(?, 'UTC'), ?, ?, ?, NULL, ?, 60000, 30000, ?,
		'link/1', 'hl7v2-map/1', ?, ?, ?`,
		r.id, r.version, r.network, "REQ-"+r.id[:8], "X|REQ-"+r.id[:8], fmt.Sprintf("HOSP_%d", r.version), r.class,
		[]string{fmt.Sprintf("v%d", r.version)}, r.token, uint32(r.atMs/1000), r.atMs, r.atMs+100, r.atMs+int64(900*r.version),
		ttf, r.atMs+int64(900*r.version), fmt.Sprintf("RSP-%d", r.version), uint32(r.version), uint32(r.version+1))
	if err != nil {
		t.Fatalf("insert %+v: %v", r, err)
	}
}

// truthJourney is a journey from every row of exchange_outcomes: the highest
// version of each (network, outcome_id), those naming the token and in
// scope, the journeyLimit newest, oldest first.
func truthJourney(t *testing.T, ctx context.Context, conn driver.Conn, token string, scope []string) []Outcome {
	t.Helper()
	s := &store{conn: conn}
	all, err := s.outcomes(ctx, "truth", `SELECT `+outcomeColumns+` FROM exchange_outcomes`)
	if err != nil {
		t.Fatal(err)
	}
	latest := map[[2]string]Outcome{}
	for _, o := range all {
		k := [2]string{o.Network, o.ID}
		if cur, ok := latest[k]; !ok || o.Version > cur.Version {
			latest[k] = o
		}
	}
	var out []Outcome
	for _, o := range latest {
		if o.PatientToken == token && (scope == nil || scope[0] == o.Network) {
			out = append(out, o)
		}
	}
	return newestFirstCut(out)
}

// viewJourney reads the journey from the outcomes view, the filter kept
// outside FINAL (safeSettings).
func viewJourney(t *testing.T, ctx context.Context, conn driver.Conn, token string, scope []string) []Outcome {
	t.Helper()
	s := &store{conn: conn}
	q, args := `SELECT `+outcomeColumns+` FROM (SELECT * FROM outcomes) WHERE patient_token = ?`, []any{token}
	if scope != nil {
		q += ` AND has(?, network)`
		args = append(args, scope)
	}
	out, err := s.outcomes(safeSettings(ctx), "view", q, args...)
	if err != nil {
		t.Fatal(err)
	}
	return newestFirstCut(out)
}

// newestFirstCut orders a journey as the API does: the journeyLimit newest
// (request time, then id, descending), then oldest first.
func newestFirstCut(out []Outcome) []Outcome {
	sort.Slice(out, func(i, j int) bool {
		if out[i].RequestedAtMs != out[j].RequestedAtMs {
			return out[i].RequestedAtMs > out[j].RequestedAtMs
		}
		return out[i].ID > out[j].ID
	})
	out = append([]Outcome{}, out[:min(len(out), journeyLimit)]...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].RequestedAtMs < out[j].RequestedAtMs })
	return out
}

func dropIDs(os []Outcome, ids map[string]bool) []Outcome {
	out := []Outcome{}
	for _, o := range os {
		if !ids[o.ID] {
			out = append(out, o)
		}
	}
	return out
}

func journeyDiff(got, want []Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "got %d, want %d\n", len(got), len(want))
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w any = "-", "-"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "  %d: got %+v\n     want %+v\n", i, g, w)
			if b.Len() > 4000 {
				break
			}
		}
	}
	return b.String()
}
