package simulator

import (
	"bytes"
	"encoding/csv"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBehaviourNetworks checks that each responder's drawn classes follow
// its designated mix (and bad months), that the slow responder is never
// later than 3x the SLA, and that the directory names every facility.
func TestBehaviourNetworks(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err := Generate(Config{Requests: 60000, Seed: 3, Start: start, Span: 5 * 30 * 24 * time.Hour,
		Networks: BehaviourNetworks(), RunaroundShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	type cell struct{ network, facility string }
	counts, totals := map[cell]map[string]int{}, map[cell]int{}
	prof := map[string]NetworkProfile{}
	for _, n := range p.Networks() {
		prof[n], _ = p.Profile(n)
	}
	behaviour := map[cell]string{}
	for _, r := range p.Responders() {
		behaviour[cell{r.Network, r.Facility}] = r.Behaviour
	}
	for _, r := range p.Requests() {
		c := cell{r.Network, r.Responder}
		if _, ok := behaviour[c]; !ok {
			t.Fatalf("request to %v, which has no profile", c)
		}
		// Month 0 only: the occasional offender is clean there.
		if MonthIndex(start, r.RequestedAt) != 0 {
			continue
		}
		if counts[c] == nil {
			counts[c] = map[string]int{}
		}
		counts[c][r.Outcome]++
		totals[c]++
		if behaviour[c] == BehaviourSlow && r.LatencyMs > 3*QuerySLA.Milliseconds() {
			t.Errorf("slow responder %v answered after %d ms", c, r.LatencyMs)
		}
	}
	for c, n := range totals {
		truth := TrueRates(prof[c.network], c.facility, start, start)
		for class, want := range truth {
			got := float64(counts[c][class]) / float64(n)
			// Five standard errors: a bound, not a statistic under test.
			if tol := 5 * math.Sqrt(want*(1-want)/float64(n)); math.Abs(got-want) > tol+1e-9 {
				t.Errorf("%v %s: %.4f of %d, want %.4f ± %.4f", c, class, got, n, want, tol)
			}
		}
	}
	recs := directoryRecords(t, p)
	if !slices.Equal(recs[0], []string{"identifier", "org_id", "name", "type", "developer", "networks"}) {
		t.Errorf("header %q", recs[0])
	}
	for c := range behaviour {
		if !slices.ContainsFunc(recs, func(r []string) bool { return r[0] == c.facility && r[4] != "" && r[5] == c.network }) {
			t.Errorf("directory lacks %v with a developer", c)
		}
	}
}

func TestResponderProfilesValidated(t *testing.T) {
	nets := BehaviourNetworks()
	nets[0].ResponderProfiles[0].Facility = "NOPE"
	nets[0].ResponderProfiles[1].Behaviour = "saint"
	if _, err := Generate(Config{Requests: 10, Networks: nets}); err == nil {
		t.Fatal("Generate accepted a profile for an unknown facility and behaviour")
	}
}

// TestDefaultDirectoryHasDevelopers: the demo's networks (no responder
// profiles) still give every responder a developer, and the developers cut
// across networks, so developer scorecards have something to compare.
func TestDefaultDirectoryHasDevelopers(t *testing.T) {
	p, err := Generate(Config{Requests: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	recs := directoryRecords(t, p)
	networksOf := map[string]map[string]bool{}
	responders := 0
	for _, r := range recs[1:] {
		if !strings.Contains(r[0], "_HOSP_") {
			if r[4] != "" {
				t.Errorf("requester %s has developer %q", r[0], r[4])
			}
			continue
		}
		responders++
		if r[4] == "" {
			t.Errorf("responder %s has no developer", r[0])
			continue
		}
		if networksOf[r[4]] == nil {
			networksOf[r[4]] = map[string]bool{}
		}
		networksOf[r[4]][r[5]] = true
	}
	if responders != 9 || len(networksOf) != 3 {
		t.Fatalf("%d responders of %d developers, want 9 of 3", responders, len(networksOf))
	}
	for dev, nets := range networksOf {
		if len(nets) < 2 {
			t.Errorf("developer %s only in %v", dev, nets)
		}
	}
}

// directoryRecords is the plan's directory CSV, parsed.
func directoryRecords(t *testing.T, p *Plan) [][]string {
	t.Helper()
	b, err := p.DirectoryCSV()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
