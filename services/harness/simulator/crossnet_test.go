package simulator

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var crossStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// TestCrossNetworkLeavesThePlanAlone: the option adds its exchanges and
// changes nothing else of the plan of the same seed.
func TestCrossNetworkLeavesThePlanAlone(t *testing.T) {
	base := Config{Requests: 2000, Seed: 5, Start: crossStart, Networks: BehaviourNetworks()}
	plain, err := Generate(base)
	if err != nil {
		t.Fatal(err)
	}
	base.CrossNetwork = CrossNetwork{Share: 0.2, Thin: map[string]float64{"bayview": 0.5}}
	crossed, err := Generate(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Crossing()) != 0 || len(crossed.Crossing()) != 400 {
		t.Fatalf("crossing exchanges %d and %d, want 0 and 400", len(plain.Crossing()), len(crossed.Crossing()))
	}
	a, b := plain.Requests(), crossed.Requests()
	if len(a) != len(b) {
		t.Fatalf("truth rows %d, with crossing %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d differs: %+v / %+v", i, a[i], b[i])
		}
	}
	for _, n := range plain.Networks() {
		own := plain.Messages(n)
		mixed := crossed.Messages(n)
		j := 0
		for _, m := range mixed {
			if j < len(own) && bytes.Equal(m.Raw, own[j].Raw) && m.Duplicate == own[j].Duplicate {
				j++
			}
		}
		if j != len(own) {
			t.Errorf("%s: %d of %d messages of the plain plan kept in order", n, j, len(own))
		}
	}
}

// TestCrossNetworkFeedsAndThinning: every crossing exchange is in the
// requester's network's feed and, unless thinned, byte for byte in the
// responder's; only refusals are thinned, at the share asked.
func TestCrossNetworkFeedsAndThinning(t *testing.T) {
	plan, err := Generate(Config{Requests: 20000, Seed: 9, Start: crossStart, Networks: BehaviourNetworks(),
		CrossNetwork: CrossNetwork{Share: 0.5, Thin: map[string]float64{"bayview": 0.2}}})
	if err != nil {
		t.Fatal(err)
	}
	feeds := map[string]map[string][]byte{}
	for _, n := range plan.Networks() {
		feeds[n] = map[string][]byte{}
		for _, m := range plan.Messages(n) {
			if m.Kind == KindRequest || m.Kind == KindAnswer {
				feeds[n][m.ControlID] = m.Raw
			}
		}
	}
	var refusals, thinned int
	for _, r := range plan.Crossing() {
		if r.RequesterNetwork == r.Network {
			t.Fatalf("%s: requester and responder on %s", r.ControlID, r.Network)
		}
		req, ok := feeds[r.RequesterNetwork][r.ControlID]
		if !ok || !strings.Contains(string(req), "|"+r.Requester+"|") || !strings.Contains(string(req), "|"+r.Responder+"|") {
			t.Fatalf("%s: not in %s's feed with its parties", r.ControlID, r.RequesterNetwork)
		}
		theirs, carried := feeds[r.Network][r.ControlID]
		if carried == r.Thinned || (carried && !bytes.Equal(theirs, req)) {
			t.Fatalf("%s: in %s's feed %v (thinned %v), same bytes %v", r.ControlID, r.Network, carried, r.Thinned, bytes.Equal(theirs, req))
		}
		if r.Answered() && !r.Thinned && !bytes.Equal(feeds[r.Network][r.ControlID+"R"], feeds[r.RequesterNetwork][r.ControlID+"R"]) {
			t.Fatalf("%s: the answers of the two feeds differ", r.ControlID)
		}
		refused := r.Outcome == RefusedException || r.Outcome == RefusedUnjustified
		if r.Thinned && (!refused || r.Network != "bayview") {
			t.Fatalf("%s: thinned, a %s of %s", r.ControlID, r.Outcome, r.Network)
		}
		if refused && r.Network == "bayview" {
			refusals++
			if r.Thinned {
				thinned++
			}
		}
	}
	share := float64(thinned) / float64(refusals)
	sd := math.Sqrt(0.2 * 0.8 / float64(refusals))
	t.Logf("bayview's crossing refusals %d, thinned %d (%.4f)", refusals, thinned, share)
	if refusals < 100 || math.Abs(share-0.2) > 4*sd {
		t.Errorf("thinned %d of %d refusals (%.4f), want 0.2 within %.4f", thinned, refusals, share, 4*sd)
	}
	if got, want := plan.CrossOutcomes(), 2*len(plan.Crossing())-thinned; got != want {
		t.Errorf("CrossOutcomes %d, want %d", got, want)
	}
	dir := t.TempDir()
	if err := plan.WriteTruth(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, CrossTruthCSV))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(plan.Crossing())+1 || strings.Count(string(b), `"true"`) != thinned {
		t.Errorf("%s: %d lines, %d thinned; want %d and %d", CrossTruthCSV, len(lines), strings.Count(string(b), `"true"`), len(plan.Crossing())+1, thinned)
	}
}

func TestCrossNetworkValidation(t *testing.T) {
	for _, c := range []CrossNetwork{
		{Share: -0.1}, {Share: 11}, {Share: 0.1, Thin: map[string]float64{"bayview": 2}},
		{Share: 0.1, Thin: map[string]float64{"nowhere": 0.1}},
	} {
		if _, err := Generate(Config{Requests: 10, CrossNetwork: c}); err == nil || !strings.Contains(err.Error(), "CrossNetwork") {
			t.Errorf("%+v: %v", c, err)
		}
	}
	one := DefaultNetworks()[:1]
	if _, err := Generate(Config{Requests: 10, Networks: one, CrossNetwork: CrossNetwork{Share: 0.1}}); err == nil {
		t.Error("one network crossing: no error")
	}
}
