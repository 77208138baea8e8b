package simulator

import (
	"bytes"
	"encoding/csv"
	"math"
	"strings"
	"testing"
	"time"
)

// TestDiscriminationSplitsRefusalsByRequesterDeveloper generates a month
// of DiscriminatingNetworks and checks, from the truth rows and the
// directory (where the requesters' developers are), that the
// discriminating responder refuses Acme EHR's requesters at 20% and the
// others at 1%, and that an even-handed responder (the repeat offender,
// 10% to everyone) does not tell them apart; each share within 4.5
// binomial standard errors of its designed rate.
func TestDiscriminationSplitsRefusalsByRequesterDeveloper(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	plan, err := Generate(Config{Requests: 60_000, Seed: 25, Start: start, Span: 31 * 24 * time.Hour, Networks: DiscriminatingNetworks(),
		RunaroundShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	developerOf := directoryDevelopers(t, plan)
	behaviour := map[string]string{}
	for _, r := range plan.Responders() {
		behaviour[r.Network+"/"+r.Facility] = r.Behaviour
	}
	type cell struct{ n, refused int }
	cells := map[[2]string]*cell{} // behaviour, requester developer
	for _, r := range plan.Requests() {
		dev := developerOf[r.Requester]
		if dev == "" {
			t.Fatalf("requester %s has no developer in the directory", r.Requester)
		}
		k := [2]string{behaviour[r.Network+"/"+r.Responder], dev}
		if cells[k] == nil {
			cells[k] = &cell{}
		}
		cells[k].n++
		if r.Outcome == RefusedUnjustified {
			cells[k].refused++
		}
	}
	for _, c := range []struct {
		behaviour, developer string
		want                 float64
	}{
		{BehaviourDiscriminating, "Acme EHR", 0.20}, {BehaviourDiscriminating, "Borealis Health IT", 0.01}, {BehaviourDiscriminating, "Cedar Systems", 0.01},
		{BehaviourRepeatOffender, "Acme EHR", 0.10}, {BehaviourRepeatOffender, "Borealis Health IT", 0.10}, {BehaviourRepeatOffender, "Cedar Systems", 0.10},
	} {
		got := cells[[2]string{c.behaviour, c.developer}]
		if got == nil || got.n < 1000 {
			t.Fatalf("%s, requesters of %s: %v requests, want at least 1000", c.behaviour, c.developer, got)
		}
		share := float64(got.refused) / float64(got.n)
		if se := math.Sqrt(c.want * (1 - c.want) / float64(got.n)); math.Abs(share-c.want) > 4.5*se {
			t.Errorf("%s refuses %s's requesters in %.4f of %d requests, want %.2f", c.behaviour, c.developer, share, got.n, c.want)
		}
	}
}

// directoryDevelopers reads the plan's directory: identifier -> developer.
func directoryDevelopers(t *testing.T, plan *Plan) map[string]string {
	t.Helper()
	b, err := plan.DirectoryCSV()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range recs[1:] {
		out[r[0]] = r[4]
	}
	return out
}

func TestDiscriminationValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		d    Discrimination
		want string
	}{
		{"unknown developer", Discrimination{Developer: "Nobody EHR", Rate: 0.2, OtherRate: 0.01}, "is no requester's developer"},
		{"rate of one", Discrimination{Developer: "Acme EHR", Rate: 1, OtherRate: 0.01}, "want each in [0, 1)"},
		{"negative rate", Discrimination{Developer: "Acme EHR", Rate: 0.2, OtherRate: -0.1}, "want each in [0, 1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			nets := DiscriminatingNetworks()
			nets[0].ResponderProfiles[7].Discrimination = &c.d
			_, err := Generate(Config{Requests: 100, Seed: 1, Networks: nets})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Discrimination") {
				t.Errorf("Generate: %v, want an error naming Discrimination with %q", err, c.want)
			}
		})
	}
}

// TestWithShare: the class at its share, the others in their proportions.
func TestWithShare(t *testing.T) {
	got := withShare([]ClassWeight{{Fulfilled, 3}, {RefusedUnjustified, 1}, {NotFound, 1}}, RefusedUnjustified, 0.2)
	want := map[string]float64{Fulfilled: 0.6, NotFound: 0.2, RefusedUnjustified: 0.2}
	var sum float64
	for _, w := range got {
		sum += w.Weight
		if math.Abs(w.Weight-want[w.Class]) > 1e-12 {
			t.Errorf("%s = %g, want %g", w.Class, w.Weight, want[w.Class])
		}
	}
	if len(got) != 3 || math.Abs(sum-1) > 1e-12 {
		t.Errorf("withShare = %v", got)
	}
}
