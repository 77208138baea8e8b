package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/api/casepacket"
	"github.com/hinscore/hinscore/services/harness/simulator"
)

// testCaseSeed is the seed of the fixture's case signing key.
var testCaseSeed = bytes.Repeat([]byte{25}, ed25519.SeedSize)

// testCasePacket gets the case packet of the busiest responder of the
// fixture's first day and checks it against the truth: one chain per
// request of that responder that day, the truth's classes, every
// original message opened, no violation unit (the HL7 v2 simulator's
// requests carry no purpose, so none is one a responder must answer), and
// a first query that, run again from the packet, returns its rows.
func testCasePacket(t *testing.T, f *fixture, rows []simulator.TruthRow) {
	day := rows[0].RequestedAt.UTC().Truncate(24 * time.Hour)
	classes := map[string]map[string]int{}
	for _, r := range rows {
		if r.RequestedAt.UTC().Truncate(24 * time.Hour).Equal(day) {
			if classes[r.Responder] == nil {
				classes[r.Responder] = map[string]int{}
			}
			classes[r.Responder][r.Outcome]++
		}
	}
	responders := make([]string, 0, len(classes))
	for r := range classes {
		responders = append(responders, r)
	}
	total := func(r string) (n int) {
		for _, c := range classes[r] {
			n += c
		}
		return n
	}
	sort.Slice(responders, func(i, j int) bool { return total(responders[i]) > total(responders[j]) })
	responder := responders[0]
	q := url.Values{"responder": {responder}, "period": {day.Format("2006-01-02")}, "reason": {"case packet test"}}
	resp, body := fetch(t, f.base, testTokens["investigator"], "/v1/case", q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	rep, err := casepacket.Verify(body, ed25519.NewKeyFromSeed(testCaseSeed).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	var sum CaseSummary
	if err := rep.ReadJSON("summary.json", &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Chains != total(responder) || sum.ViolationUnits != 0 || sum.Originals["ok"] == 0 || len(sum.Originals) != 1 {
		t.Errorf("%s on %s: %d chains (truth %d), %d violation units, originals %v", responder, day.Format("2006-01-02"), sum.Chains, total(responder), sum.ViolationUnits, sum.Originals)
	}
	t.Logf("%s on %s: %d chains %v, %d original messages, %d queries, %d bytes", responder, day.Format("2006-01-02"), sum.Chains, sum.Classes, sum.Originals["ok"], sum.Queries, len(body))
	for class, n := range classes[responder] {
		if sum.Classes[class] != n {
			t.Errorf("%s: %d in the packet, %d in the truth", class, sum.Classes[class], n)
		}
	}
	if code, _ := f.get(t, "operator-ns", "/v1/case", q); code != http.StatusForbidden {
		t.Errorf("operator: %d", code)
	}
	testQueryRunsAgain(t, f, rep)
}

// testQueryRunsAgain runs the packet's first recorded query again, as a
// reader would from queries.json, and compares the rows.
func testQueryRunsAgain(t *testing.T, f *fixture, rep casepacket.Report) {
	data, _ := rep.File("queries.json")
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var queries []RecordedQuery
	if err := dec.Decode(&queries); err != nil || len(queries) == 0 {
		t.Fatalf("queries.json: %v", err)
	}
	first := queries[0]
	args := make([]any, len(first.Args))
	for i, a := range first.Args {
		args[i] = a
		if n, ok := a.(json.Number); ok {
			if v, err := n.Int64(); err == nil {
				args[i] = v
			}
		}
	}
	ctx := safeSettings(context.Background())
	again, err := f.conn.Query(ctx, first.SQL, args...)
	if err != nil {
		t.Fatalf("%s: %v", first.SQL, err)
	}
	defer again.Close()
	var ids []string
	for again.Next() {
		o, err := scanOutcome(again)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	if len(ids) != len(first.Rows) || len(ids) == 0 {
		t.Fatalf("run again: %d rows, the packet holds %d", len(ids), len(first.Rows))
	}
	for i, row := range first.Rows {
		if id, _ := row[0].(string); id != ids[i] {
			t.Fatalf("row %d: %v, run again %s", i, row[0], ids[i])
		}
	}
	if !strings.Contains(first.SQL, "responder_org = ?") || first.Settings["optimize_move_to_prewhere"] == nil {
		t.Errorf("first query %q settings %v", first.SQL, first.Settings)
	}
}
