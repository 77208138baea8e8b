package simulator

import (
	"bytes"
	"math"
	"slices"
	"testing"
	"time"
)

// TestDuplicatesDoNotChangeTruth: exact copies add frames, never requests,
// outcomes or distinct messages, and the rest of the plan is the same.
func TestDuplicatesDoNotChangeTruth(t *testing.T) {
	none := mustGenerate(t, Config{Requests: 3000, Seed: 5, DuplicateRate: -1})
	many := mustGenerate(t, Config{Requests: 3000, Seed: 5, DuplicateRate: 0.2})
	if !slices.Equal(none.Requests(), many.Requests()) {
		t.Fatal("duplicates changed the truth rows")
	}
	if none.ValidMessages() != many.ValidMessages() || none.Duplicates() != 0 {
		t.Fatalf("valid messages %d vs %d, duplicates without a rate %d", none.ValidMessages(), many.ValidMessages(), none.Duplicates())
	}
	if d := many.Duplicates(); math.Abs(float64(d)/float64(many.ValidMessages())-0.2) > 0.02 {
		t.Errorf("%d duplicates of %d messages, want about 20%%", d, many.ValidMessages())
	}
	for _, n := range many.Networks() {
		originals := map[string][]byte{}
		var kept []Message
		for _, m := range many.Messages(n) {
			if !m.Duplicate {
				kept = append(kept, m)
				originals[m.ControlID] = m.Raw
				continue
			}
			if orig, ok := originals[m.ControlID]; !ok || !bytes.Equal(orig, m.Raw) {
				t.Fatalf("%s: duplicate %s is not an exact copy of an earlier message", n, m.ControlID)
			}
		}
		base := none.Messages(n)
		if len(kept) != len(base) {
			t.Fatalf("%s: %d originals, %d without duplicates", n, len(kept), len(base))
		}
		for i := range base {
			if !bytes.Equal(kept[i].Raw, base[i].Raw) {
				t.Fatalf("%s: message %d differs once duplicates are added", n, i)
			}
		}
	}
}

// TestOutOfOrderBounded: some answers overtake their requests, and no
// message's event time ever runs ahead of the feed by more than twice the
// bound, so the linker's lateness always covers it.
func TestOutOfOrderBounded(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 6000, OutOfOrderRate: 0.5, OutOfOrderMax: 3 * time.Second})
	overtaken := 0
	for _, r := range p.Requests() {
		if r.OutOfOrder {
			overtaken++
			if r.LatencyMs > 3000 {
				t.Errorf("%s: answer after %d ms overtakes its request", r.ControlID, r.LatencyMs)
			}
		}
	}
	if overtaken == 0 {
		t.Fatal("no answer overtakes its request")
	}
	for _, n := range p.Networks() {
		var front time.Time
		seen := map[string]bool{}
		before := 0
		for _, m := range p.Messages(n) {
			if m.DeliverAt.After(front) {
				front = m.DeliverAt
			}
			if ahead := m.Time.Sub(front); ahead > 6*time.Second {
				t.Errorf("%s %s: event time %s ahead of the feed", n, m.ControlID, ahead)
			}
			if m.Kind == KindAnswer && !seen[m.ControlID[:len(m.ControlID)-1]] {
				before++
			}
			seen[m.ControlID] = true
		}
		if before == 0 {
			t.Errorf("%s: every answer came after its request", n)
		}
	}
}

// TestRunarounds: journeys of 3-6 requests for one patient by one
// requester, across responders, never fulfilled, listed in the truth.
func TestRunarounds(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 10000})
	journeys := map[string][]TruthRow{}
	for _, r := range p.Requests() {
		if r.Runaround {
			journeys[r.Network+"/"+r.Patient] = append(journeys[r.Network+"/"+r.Patient], r)
		}
	}
	share := float64(runarounds(p)) / 10000
	if math.Abs(share-0.03) > 0.005 {
		t.Errorf("runaround share %.4f, want about 0.03", share)
	}
	listed := 0
	for _, ps := range p.Runarounds() {
		listed += len(ps)
	}
	if listed != len(journeys) {
		t.Errorf("Runarounds lists %d patients, the rows %d", listed, len(journeys))
	}
	for key, rows := range journeys {
		if len(rows) < 3 || len(rows) > 6 {
			t.Errorf("%s: journey of %d requests", key, len(rows))
		}
		responders := map[string]bool{}
		for _, r := range rows {
			responders[r.Responder] = true
			if r.Outcome == Fulfilled || r.Outcome == FulfilledLate || r.Requester != rows[0].Requester {
				t.Errorf("%s: %s %s by %s", key, r.ControlID, r.Outcome, r.Requester)
			}
		}
		if len(responders) < 2 {
			t.Errorf("%s: asked only %v", key, responders)
		}
	}
}

// TestLoadCurves: more requests at 11:00 than at 03:00, fewer on weekends.
func TestLoadCurves(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	p := mustGenerate(t, Config{Requests: 20000, Start: start, Span: 28 * 24 * time.Hour, RunaroundShare: -1})
	var byHour [24]int
	weekday, weekend := 0, 0
	for _, r := range p.Requests() {
		byHour[r.RequestedAt.Hour()]++
		if wd := r.RequestedAt.Weekday(); wd == time.Saturday || wd == time.Sunday {
			weekend++
		} else {
			weekday++
		}
	}
	if byHour[11] < 2*byHour[3] {
		t.Errorf("11:00 has %d requests, 03:00 %d: want a daily peak", byHour[11], byHour[3])
	}
	perWeekday, perWeekendDay := float64(weekday)/20, float64(weekend)/8
	if ratio := perWeekendDay / perWeekday; ratio < 0.35 || ratio > 0.55 {
		t.Errorf("a weekend day has %.2f of a weekday's load, want about 0.45", ratio)
	}
}

// TestDrift: over six months bayview's suspect share falls and prairie's
// rises, as their profiles say.
func TestDrift(t *testing.T) {
	p := mustGenerate(t, Config{Requests: 30000, Span: 180 * 24 * time.Hour, RunaroundShare: -1})
	type tally struct{ suspect, all [2]int }
	got := map[string]*tally{}
	half := testStart.Add(90 * 24 * time.Hour)
	for _, r := range p.Requests() {
		if got[r.Network] == nil {
			got[r.Network] = &tally{}
		}
		i := 0
		if !r.RequestedAt.Before(half) {
			i = 1
		}
		got[r.Network].all[i]++
		if suspectClass(r.Outcome) {
			got[r.Network].suspect[i]++
		}
	}
	rate := func(n string, i int) float64 { return float64(got[n].suspect[i]) / float64(got[n].all[i]) }
	if rate("bayview", 1) >= rate("bayview", 0)*0.85 {
		t.Errorf("bayview suspect share %.3f then %.3f: want it to improve", rate("bayview", 0), rate("bayview", 1))
	}
	if rate("prairie", 1) <= rate("prairie", 0)*1.3 {
		t.Errorf("prairie suspect share %.3f then %.3f: want it to get worse", rate("prairie", 0), rate("prairie", 1))
	}
	if a, b := rate("northstar", 0), rate("northstar", 1); math.Abs(a-b) > 0.02 {
		t.Errorf("northstar suspect share %.3f then %.3f: want it steady", a, b)
	}
}
