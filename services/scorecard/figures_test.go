package scorecard

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

// The figures test checks every figure of a small hand-made world against a
// computation of its own on the same rows: time to acknowledge and to fulfil
// (a sorted slice and DOMAIN.md's quantile), per-developer figures, refusals
// by cited exception, the peer median and the lower bound against it, the
// trend, and small samples. The golden files only freeze what Build gave
// once; this test says what it should give.

// obs is one outcome as the test writes it and as its reference reads it.
type obs struct {
	network, ident, kind, outcome, code string
	at                                  time.Time
	sla                                 uint64
	tta, ttf                            *uint64
}

// figuresDirectory is the organisation directory of the world: north-2 has
// two identifiers, NX is unknown to it (its own organisation, developer
// unknown).
const figuresDirectory = `identifier,org_id,name,type,developer,networks
N1,north-1,North General,provider,vendorA,north
N2a,north-2,North Clinic,provider,vendorB,north
N2b,north-2,North Clinic annex,provider,vendorB,north
N3,north-3,North Cottage,provider,vendorA,north
S1,south-1,South General,provider,vendorA,south
S2,south-2,South Infirmary,provider,vendorC,south
E1,east-1,East Clinic,provider,vendorC,east
`

// refOrg is the test's own reading of figuresDirectory.
func refOrg(ident string) (org, developer string) {
	switch ident {
	case "N1":
		return "north-1", "vendorA"
	case "N2a", "N2b":
		return "north-2", "vendorB"
	case "N3":
		return "north-3", "vendorA"
	case "S1":
		return "south-1", "vendorA"
	case "S2":
		return "south-2", "vendorC"
	case "E1":
		return "east-1", "vendorC"
	}
	return ident, ""
}

const (
	querySLA    = uint64(60_000)
	documentSLA = uint64(300_000)
)

var (
	march = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	april = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	may   = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
)

// group adds n outcomes of one kind to obs; tta and ttf (nil for none) give
// the j-th outcome's times.
type group struct {
	network, ident, kind, outcome, code string
	n                                   int
	tta, ttf                            func(j int) uint64
}

func steps(from, step uint64) func(int) uint64 {
	return func(j int) uint64 { return from + uint64(j)*step }
}

func values(vs ...uint64) func(int) uint64 { return func(j int) uint64 { return vs[j] } }

// figuresWorld is three months of three networks. In 2026-05:
//
//	N1 (north-1, vendorA) 40: 30 fulfilled (ttf 1..30 s, tta 0.1..3 s),
//	   4 fulfilled_late (ttf 70, 130, 190, 250 s; tta 65..80 s, past the
//	   SLA), 2 refused_unjustified, 2 refused_exception 171.204 (with a ttf
//	   that must not count), 1 redirected redirect-portal, 1 unanswered:
//	   suspect 6 (2 + 1 + 1 + the 190 and 250 s answers).
//	north-2 (vendorB) 40 over N2a and N2b: 28 query fulfilments, 10
//	   document retrievals answered in 100..280 s (within their 5 min SLA),
//	   2 unanswered: suspect 2.
//	N3 (north-3, vendorA) 6 unanswered: a small sample at 100% suspect.
//	NX (unknown) 30: 27 fulfilled, 3 refused_exception 171.202: suspect 0.
//	S1 (south-1, vendorA) 52: 40 fulfilled, 10 refused_exception 171.204,
//	   one answered at exactly the SLA, one at exactly 3 × SLA: suspect 0.
//	S2 (south-2, vendorC) 60: 42 fulfilled, 9 refused_unjustified,
//	   6 unanswered, 3 redirected redirect-fax: suspect 18.
//	E1 (east-1, vendorC) 10 fulfilled: the east network is a small sample.
//
// Earlier: N1 is flagged in 2026-03 and has no requests in 2026-04; S2 is
// flagged in 2026-03 and 2026-04 too (a repeat offender in 2026-05).
func figuresWorld() []obs {
	var out []obs
	add := func(month time.Time, gs ...group) {
		for gi, g := range gs {
			sla := querySLA
			if g.kind == "document_retrieve" {
				sla = documentSLA
			}
			for j := range g.n {
				o := obs{network: g.network, ident: g.ident, kind: g.kind, outcome: g.outcome, code: g.code, sla: sla,
					at: month.Add(time.Duration(gi)*24*time.Hour + time.Duration(j)*time.Minute)}
				if g.tta != nil {
					v := g.tta(j)
					o.tta = &v
				}
				if g.ttf != nil {
					v := g.ttf(j)
					o.ttf = &v
				}
				out = append(out, o)
			}
		}
	}
	const pq = "patient_query"
	add(march,
		group{"north", "N1", pq, "fulfilled", "", 32, steps(1000, 10), steps(5000, 100)},
		group{"north", "N1", pq, "unanswered", "", 8, nil, nil},
		group{"north", "N2a", pq, "fulfilled", "", 35, steps(800, 20), steps(3000, 50)},
		group{"south", "S2", pq, "fulfilled", "", 30, steps(900, 5), steps(4000, 70)},
		group{"south", "S2", pq, "unanswered", "", 10, nil, nil},
		group{"south", "S1", pq, "fulfilled", "", 31, steps(700, 3), steps(2000, 30)},
	)
	add(april,
		group{"north", "N2a", pq, "fulfilled", "", 33, steps(800, 20), steps(3000, 50)},
		group{"north", "N2a", pq, "refused_exception", "171.204", 1, steps(600, 1), nil},
		group{"south", "S2", pq, "fulfilled", "", 32, steps(900, 5), steps(4000, 70)},
		group{"south", "S2", pq, "refused_unjustified", "", 8, steps(1200, 10), nil},
	)
	add(may,
		group{"north", "N1", pq, "fulfilled", "", 30, steps(100, 100), steps(1000, 1000)},
		group{"north", "N1", pq, "fulfilled_late", "", 4, steps(65_000, 5000), values(70_000, 130_000, 190_000, 250_000)},
		group{"north", "N1", pq, "refused_unjustified", "", 2, values(150, 250), nil},
		group{"north", "N1", pq, "refused_exception", "171.204", 2, values(350, 450), steps(900, 0)},
		group{"north", "N1", pq, "redirected", "redirect-portal", 1, values(550), nil},
		group{"north", "N1", pq, "unanswered", "", 1, nil, nil},
		group{"north", "N2a", pq, "fulfilled", "", 20, steps(400, 37), steps(2000, 500)},
		group{"north", "N2b", pq, "fulfilled", "", 8, steps(61_000, 1000), steps(12_000, 7000)},
		group{"north", "N2b", "document_retrieve", "fulfilled", "", 10, steps(90_000, 25_000), steps(100_000, 20_000)},
		group{"north", "N2b", pq, "unanswered", "", 2, nil, nil},
		group{"north", "N3", pq, "unanswered", "", 6, nil, nil},
		group{"north", "NX", pq, "fulfilled", "", 27, steps(300, 11), steps(5000, 1500)},
		group{"north", "NX", pq, "refused_exception", "171.202", 3, values(800, 900, 1000), nil},
		// An orphan is no request: no volume, no time to acknowledge.
		group{"north", "N1", "", "orphan", "", 1, values(5), values(5)},
		group{"south", "S1", pq, "fulfilled", "", 40, steps(250, 13), steps(3000, 900)},
		group{"south", "S1", pq, "refused_exception", "171.204", 10, steps(500, 20), nil},
		// On the boundaries: acknowledged and fulfilled at exactly the SLA
		// (within), acknowledged 1 ms past it, fulfilled at exactly 3 × SLA
		// (late, not suspect).
		group{"south", "S1", pq, "fulfilled", "", 1, values(60_000), values(60_000)},
		group{"south", "S1", pq, "fulfilled_late", "", 1, values(60_001), values(180_000)},
		group{"south", "S2", pq, "fulfilled", "", 42, steps(700, 90), steps(4000, 1300)},
		group{"south", "S2", pq, "refused_unjustified", "", 9, steps(200, 10), nil},
		group{"south", "S2", pq, "unanswered", "", 6, nil, nil},
		group{"south", "S2", pq, "redirected", "redirect-fax", 3, values(3000, 1000, 2000), nil},
		group{"east", "E1", pq, "fulfilled", "", 10, steps(100, 100), steps(1000, 100)},
	)
	return out
}

// insertObs writes obs as outcome rows; the first of them is also written
// once more as an older version that said unanswered, which the view must
// drop.
func insertObs(t *testing.T, conn driver.Conn, rows []obs) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id,
		request_kind, responder_org, outcome, exception_code, requested_at, requested_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if i == 0 {
			if err := b.Append(id(i), uint64(1), r.network, fmt.Sprintf("req-%d", i), r.kind, r.ident,
				"unanswered", "", r.at, r.at.UnixMilli(), nil, nil, r.sla, uint64(30_000)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Append(id(i), uint64(2), r.network, fmt.Sprintf("req-%d", i), r.kind, r.ident,
			r.outcome, r.code, r.at, r.at.UnixMilli(), r.tta, r.ttf, r.sla, uint64(30_000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if _, err := chstore.LoadOrganizations(ctx, conn, strings.NewReader(figuresDirectory), march); err != nil {
		t.Fatal(err)
	}
}

// refKey names one entity of one month in the reference.
type refKey struct {
	month          time.Time
	network, level string
	id             string
}

// refFigures are one entity's figures as the test computes them.
type refFigures struct {
	requests   uint64
	classes    map[string]uint64
	suspect    uint64
	ttf, tta   []uint64
	ttfWithin  uint64
	ttaWithin  uint64
	codes      map[string]uint64 // outcome + "/" + code
	kinds      map[string]uint64
	identifier map[string]bool
}

func (f *refFigures) rate() float64 { return float64(f.suspect) / float64(f.requests) }

// peer: at least 30 requests, and not the "developer unknown" bucket.
func (k refKey) peer(f *refFigures) bool {
	return f.requests >= 30 && !(k.level == LevelDeveloper && k.id == "")
}

// reference aggregates obs by month and entity of every level.
func reference(rows []obs) map[refKey]*refFigures {
	ref := map[refKey]*refFigures{}
	for _, r := range rows {
		m := time.Date(r.at.Year(), r.at.Month(), 1, 0, 0, 0, 0, time.UTC)
		org, dev := refOrg(r.ident)
		for _, k := range []refKey{{m, r.network, LevelNetwork, ""}, {m, r.network, LevelResponder, org}, {m, r.network, LevelDeveloper, dev}} {
			f := ref[k]
			if f == nil {
				f = &refFigures{classes: map[string]uint64{}, codes: map[string]uint64{}, kinds: map[string]uint64{}, identifier: map[string]bool{}}
				ref[k] = f
			}
			f.identifier[r.ident] = true
			if r.outcome == "orphan" {
				continue
			}
			f.requests++
			f.classes[r.outcome]++
			f.kinds[r.kind]++
			switch r.outcome {
			case "refused_unjustified", "redirected", "unanswered":
				f.suspect++
			case "fulfilled", "fulfilled_late":
				if r.ttf != nil && *r.ttf > 3*r.sla {
					f.suspect++
				}
			}
			if r.ttf != nil && (r.outcome == "fulfilled" || r.outcome == "fulfilled_late" || r.outcome == "partial") {
				f.ttf = append(f.ttf, *r.ttf)
				if *r.ttf <= r.sla {
					f.ttfWithin++
				}
			}
			if r.tta != nil {
				f.tta = append(f.tta, *r.tta)
				if *r.tta <= r.sla {
					f.ttaWithin++
				}
			}
			if r.code != "" {
				f.codes[r.outcome+"/"+r.code]++
			}
		}
	}
	for _, f := range ref {
		slices.Sort(f.ttf)
		slices.Sort(f.tta)
	}
	return ref
}

// median of values: the middle one, or the mean of the middle two; 0 for
// none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	v := slices.Clone(vs)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// wilsonRoots solves the Wilson score condition (p̂ − π)² = z²·π(1 − π)/n
// for π: the interval's bounds are the two roots of that quadratic.
func wilsonRoots(count, total uint64) (low, high float64) {
	const z = 1.959963984540054
	n, p := float64(total), float64(count)/float64(total)
	a := 1 + z*z/n
	b := -(2*p + z*z/n)
	c := p * p
	d := math.Sqrt(b*b - 4*a*c)
	return (-b - d) / (2 * a), (-b + d) / (2 * a)
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9 }

// checkRate compares a Rate with count/total and the Wilson roots.
func checkRate(t *testing.T, where string, r *hinscorev1.Rate, count, total uint64) {
	t.Helper()
	low, high := wilsonRoots(count, total)
	if r.GetCount() != count || r.GetTotal() != total || !near(r.GetRate(), float64(count)/float64(total)) ||
		!near(r.GetCiLow(), low) || !near(r.GetCiHigh(), high) || r.GetSmallSample() != (total < 30) {
		t.Errorf("%s: rate %v, want %d/%d [%.6f, %.6f] small sample %v", where, r, count, total, low, high, total < 30)
	}
}

// checkLatency compares p50/p90/p99 with the elements at ⌊level·n⌋ of the
// sorted times (DOMAIN.md's quantilesExact) and the within-SLA share.
func checkLatency(t *testing.T, where string, l *hinscorev1.Latency, sorted []uint64, within uint64) {
	t.Helper()
	if l.GetCount() != uint64(len(sorted)) {
		t.Errorf("%s: count %d, want %d", where, l.GetCount(), len(sorted))
		return
	}
	if len(sorted) > 0 {
		want := []uint64{exactQuantile(sorted, 0.5), exactQuantile(sorted, 0.9), exactQuantile(sorted, 0.99)}
		if got := []uint64{l.GetP50Ms(), l.GetP90Ms(), l.GetP99Ms()}; !slices.Equal(got, want) {
			t.Errorf("%s: p50/p90/p99 %v, want %v", where, got, want)
		}
		checkRate(t, where+" within SLA", l.GetWithinSla(), within, uint64(len(sorted)))
	}
}

// allEntities returns a card's network, responders and developers.
func allEntities(c *hinscorev1.Scorecard) []*hinscorev1.Entity {
	return append(append([]*hinscorev1.Entity{networkEntity(c)}, c.GetResponders()...), c.GetDevelopers()...)
}

func entityKeyOf(c *hinscorev1.Scorecard, e *hinscorev1.Entity) refKey {
	k := refKey{time.UnixMilli(c.GetPeriodStartMs()).UTC(), c.GetNetwork(), e.GetLevel(), e.GetId()}
	if k.level == LevelNetwork {
		k.id = ""
	}
	return k
}

// peersOf returns the figures of k's peers: the other entities of its
// level and month with requests that are peers.
func peersOf(ref map[refKey]*refFigures, k refKey) []*refFigures {
	var peers []*refFigures
	for ok, o := range ref {
		if ok.month == k.month && ok.level == k.level && ok != k && o.requests > 0 && ok.peer(o) {
			peers = append(peers, o)
		}
	}
	return peers
}

// refRanking is the reference's ranking of each level in each month: by
// entity, the peer median, the excess events and priority, the flags of
// the last four months and the rank.
type refRanking struct {
	ref                         map[refKey]*refFigures
	threshold                   float64
	ranks, counts               map[refKey]int
	meds, excesses, priorities  map[refKey]float64
	consecutive, flaggedPeriods map[refKey]uint32
}

// flagged says whether the reference flags k: a peer whose lower bound is
// above the threshold.
func (rr *refRanking) flagged(k refKey) bool {
	f := rr.ref[k]
	if f == nil || !k.peer(f) {
		return false
	}
	low, _ := wilsonRoots(f.suspect, f.requests)
	return low > rr.threshold
}

// flagRun counts the months k is flagged in among the last four (n) and
// how many of them in a row up to k's (run).
func (rr *refRanking) flagRun(k refKey) (run, n uint32) {
	inRun := true
	for i := range 4 {
		pk := k
		pk.month = k.month.AddDate(0, -i, 0)
		if rr.flagged(pk) {
			n++
			if inRun {
				run++
			}
		} else {
			inRun = false
		}
	}
	return run, n
}

// rankReference ranks the reference's entities of each level in each month.
func rankReference(ref map[refKey]*refFigures) *refRanking {
	rr := &refRanking{ref: ref, threshold: DefaultParams().FlagThreshold,
		ranks: map[refKey]int{}, counts: map[refKey]int{},
		meds: map[refKey]float64{}, excesses: map[refKey]float64{}, priorities: map[refKey]float64{},
		consecutive: map[refKey]uint32{}, flaggedPeriods: map[refKey]uint32{}}
	type ranked struct {
		k                        refKey
		low, med, excess, weight float64
	}
	byLevel := map[refKey][]ranked{} // key: month and level only
	for k, f := range ref {
		if f.requests == 0 {
			continue
		}
		var peers []float64
		for _, o := range peersOf(ref, k) {
			peers = append(peers, o.rate())
		}
		med := median(peers)
		low, _ := wilsonRoots(f.suspect, f.requests)
		var excess float64
		if k.peer(f) {
			excess = math.Max(0, low-med) * float64(f.requests)
		}
		run, n := rr.flagRun(k)
		rr.meds[k], rr.excesses[k], rr.consecutive[k], rr.flaggedPeriods[k] = med, excess, run, n
		rr.priorities[k] = excess * float64(1+run)
		lk := refKey{month: k.month, level: k.level}
		byLevel[lk] = append(byLevel[lk], ranked{k: k, low: low, excess: excess, weight: rr.priorities[k]})
	}
	for _, list := range byLevel {
		slices.SortFunc(list, func(a, b ranked) int {
			return cmp.Or(cmp.Compare(b.weight, a.weight), cmp.Compare(b.excess, a.excess), cmp.Compare(b.low, a.low),
				strings.Compare(a.k.network, b.k.network), strings.Compare(a.k.id, b.k.id))
		})
		for i, r := range list {
			rr.ranks[r.k], rr.counts[r.k] = i+1, len(list)
		}
	}
	return rr
}

// checkAgainstReference compares every entity of every card with the
// reference, figure by figure.
func checkAgainstReference(t *testing.T, cards []*hinscorev1.Scorecard, ref map[refKey]*refFigures) {
	t.Helper()
	rr := rankReference(ref)
	seen := 0
	for _, c := range cards {
		for _, e := range allEntities(c) {
			k := entityKeyOf(c, e)
			where := fmt.Sprintf("%s %s %s %q", c.GetPeriod(), k.network, k.level, k.id)
			f := ref[k]
			if f == nil || f.requests == 0 {
				t.Errorf("%s: not in the reference", where)
				continue
			}
			seen++
			checkRefFigures(t, where, k, e, f)
			checkRefRefusals(t, where, k, e, f, ref)
			checkRefRanking(t, where, k, e, rr)
			checkRefTrend(t, where, k, e, rr)
		}
	}
	// And no entity of a card's network and month is missing.
	want := 0
	for k := range ref {
		if slices.ContainsFunc(cards, func(c *hinscorev1.Scorecard) bool {
			return c.GetNetwork() == k.network && c.GetPeriodStartMs() == k.month.UnixMilli()
		}) {
			want++
		}
	}
	if seen == 0 || seen != want {
		t.Errorf("%d entities compared, the reference has %d", seen, want)
	}
}

// checkRefFigures compares entity e (k, named where) with its reference
// figures f: requests, identifiers, class rates, volumes by kind, the
// suspect rate and the times to fulfil and to acknowledge.
func checkRefFigures(t *testing.T, where string, k refKey, e *hinscorev1.Entity, f *refFigures) {
	t.Helper()
	if e.GetRequests() != f.requests {
		t.Errorf("%s: %d requests, want %d", where, e.GetRequests(), f.requests)
	}
	var idents []string
	for i := range f.identifier {
		idents = append(idents, i)
	}
	slices.Sort(idents)
	if k.level != LevelNetwork && !slices.Equal(e.GetIdentifiers(), idents) {
		t.Errorf("%s: identifiers %v, want %v", where, e.GetIdentifiers(), idents)
	}
	for _, o := range e.GetOutcomes() {
		if o.GetOutcome() == "orphan" {
			continue
		}
		checkRate(t, where+" "+o.GetOutcome(), o.GetRate(), f.classes[o.GetOutcome()], f.requests)
	}
	var kinds []string
	for _, v := range e.GetVolumes() {
		kinds = append(kinds, fmt.Sprintf("%s=%d", v.GetRequestKind(), v.GetRequests()))
	}
	var wantKinds []string
	for kind, n := range f.kinds {
		wantKinds = append(wantKinds, fmt.Sprintf("%s=%d", kind, n))
	}
	slices.Sort(wantKinds)
	if !slices.Equal(kinds, wantKinds) {
		t.Errorf("%s: volumes %v, want %v", where, kinds, wantKinds)
	}
	checkRate(t, where+" suspect", e.GetSuspect(), f.suspect, f.requests)
	checkLatency(t, where+" ttf", e.GetTimeToFulfil(), f.ttf, f.ttfWithin)
	checkLatency(t, where+" tta", e.GetTimeToAcknowledge(), f.tta, f.ttaWithin)
}

// checkRefRefusals compares e's refusals by cited exception with the
// reference, with the peers' median share and the overuse flag.
func checkRefRefusals(t *testing.T, where string, k refKey, e *hinscorev1.Entity, f *refFigures, ref map[refKey]*refFigures) {
	t.Helper()
	var codes []string
	for code := range f.codes {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	if len(e.GetRefusals()) != len(codes) {
		t.Errorf("%s: refusals %v, want %v", where, e.GetRefusals(), codes)
	}
	for i, x := range e.GetRefusals() {
		if i >= len(codes) {
			break
		}
		if got := x.GetOutcome() + "/" + x.GetCode(); got != codes[i] {
			t.Errorf("%s: refusal %d is %s, want %s", where, i, got, codes[i])
			continue
		}
		checkRate(t, where+" "+codes[i], x.GetRate(), f.codes[codes[i]], f.requests)
		var shares []float64
		for _, o := range peersOf(ref, k) {
			shares = append(shares, float64(o.codes[codes[i]])/float64(o.requests))
		}
		med := median(shares)
		if !near(x.GetPeerMedian(), med) {
			t.Errorf("%s: %s peer median %g, want %g", where, codes[i], x.GetPeerMedian(), med)
		}
		p := DefaultParams()
		low, _ := wilsonRoots(f.codes[codes[i]], f.requests)
		overuse := x.GetOutcome() == "refused_exception" && k.peer(f) && low > math.Max(p.OveruseMultiple*med, p.OveruseFloor)
		if x.GetOveruse() != overuse {
			t.Errorf("%s: %s overuse %v, want %v", where, codes[i], x.GetOveruse(), overuse)
		}
	}
}

// checkRefRanking compares e's lower bound against the peer median, its
// flags and its rank with the reference's ranking.
func checkRefRanking(t *testing.T, where string, k refKey, e *hinscorev1.Entity, rr *refRanking) {
	t.Helper()
	rk := e.GetRanking()
	if !near(rk.GetPeerMedian(), rr.meds[k]) || !near(rk.GetExcessEvents(), rr.excesses[k]) || !near(rk.GetPriority(), rr.priorities[k]) {
		t.Errorf("%s: peer median %g, excess %g, priority %g; want %g, %g, %g", where,
			rk.GetPeerMedian(), rk.GetExcessEvents(), rk.GetPriority(), rr.meds[k], rr.excesses[k], rr.priorities[k])
	}
	if rk.GetFlagged() != rr.flagged(k) || rk.GetFlaggedPeriods() != rr.flaggedPeriods[k] || rk.GetConsecutive() != rr.consecutive[k] ||
		rk.GetRepeatOffender() != (rr.flaggedPeriods[k] >= 3) {
		t.Errorf("%s: flagged %v, %d of 4, %d in a row, repeat %v; want %v, %d, %d", where, rk.GetFlagged(), rk.GetFlaggedPeriods(),
			rk.GetConsecutive(), rk.GetRepeatOffender(), rr.flagged(k), rr.flaggedPeriods[k], rr.consecutive[k])
	}
	if int(rk.GetRank()) != rr.ranks[k] || int(rk.GetRanked()) != rr.counts[k] {
		t.Errorf("%s: rank %d of %d, want %d of %d", where, rk.GetRank(), rk.GetRanked(), rr.ranks[k], rr.counts[k])
	}
}

// checkRefTrend compares e's trend, the last four months oldest first,
// with the reference.
func checkRefTrend(t *testing.T, where string, k refKey, e *hinscorev1.Entity, rr *refRanking) {
	t.Helper()
	if len(e.GetTrend()) != 4 {
		t.Errorf("%s: %d trend points, want 4", where, len(e.GetTrend()))
		return
	}
	for i, tp := range e.GetTrend() {
		pk := k
		pk.month = k.month.AddDate(0, i-3, 0)
		label := pk.month.Format("2006-01")
		if tp.GetPeriod() != label {
			t.Errorf("%s: trend point %d is %s, want %s", where, i, tp.GetPeriod(), label)
		}
		var n, s uint64
		if pf := rr.ref[pk]; pf != nil {
			n, s = pf.requests, pf.suspect
		}
		if tp.GetRequests() != n || tp.GetFlagged() != rr.flagged(pk) {
			t.Errorf("%s: trend %s: %d requests, flagged %v; want %d, %v", where, label, tp.GetRequests(), tp.GetFlagged(), n, rr.flagged(pk))
		}
		if n == 0 {
			if tp.GetSuspect().GetTotal() != 0 || tp.GetSuspect().GetCiLow() != 0 || tp.GetSuspect().GetCiHigh() != 1 {
				t.Errorf("%s: trend %s without requests: suspect %v, want 0/0 in [0, 1]", where, label, tp.GetSuspect())
			}
		} else {
			checkRate(t, where+" trend "+label, tp.GetSuspect(), s, n)
		}
	}
}

func TestFiguresAgainstReference(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	rows := figuresWorld()
	insertObs(t, conn, rows)
	ref := reference(rows)

	all, err := Build(ctx, conn, Query{Granularity: Month}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range all {
		got = append(got, c.GetNetwork()+"/"+c.GetPeriod())
	}
	if want := "east/2026-05 north/2026-03 north/2026-04 north/2026-05 south/2026-03 south/2026-04 south/2026-05"; strings.Join(got, " ") != want {
		t.Fatalf("cards %v, want %s", got, want)
	}
	t.Run("every month, view", func(t *testing.T) { checkAgainstReference(t, all, ref) })

	// One month asked for alone: the earlier months behind its trend and
	// its flags are still read.
	mayOnly, err := Build(ctx, conn, Query{Granularity: Month, From: may, To: may.AddDate(0, 1, 0)}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(mayOnly) != 3 {
		t.Fatalf("2026-05 alone: %d cards, want 3", len(mayOnly))
	}
	t.Run("one month, view", func(t *testing.T) { checkAgainstReference(t, mayOnly, ref) })

	if err := chstore.RebuildRollups(ctx, conn, testNow, march, april, may); err != nil {
		t.Fatal(err)
	}
	rolled, err := Build(ctx, conn, Query{Granularity: Month, Source: SourceRollup}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("every month, rollup", func(t *testing.T) { checkAgainstReference(t, rolled, ref) })

	// The same figures stated by hand, so that the reference above is
	// checked too.
	t.Run("by hand", func(t *testing.T) { checkByHand(t, mayOnly) })
}

// find returns the one element of list that match accepts.
func find[T any](t *testing.T, list []T, what string, match func(T) bool) T {
	t.Helper()
	i := slices.IndexFunc(list, match)
	if i < 0 {
		t.Fatalf("no %s", what)
	}
	return list[i]
}

func cardOf(t *testing.T, cards []*hinscorev1.Scorecard, network string) *hinscorev1.Scorecard {
	t.Helper()
	return find(t, cards, "card for "+network, func(c *hinscorev1.Scorecard) bool { return c.GetNetwork() == network })
}

func entityOf(t *testing.T, list []*hinscorev1.Entity, id string) *hinscorev1.Entity {
	t.Helper()
	return find(t, list, fmt.Sprintf("entity %q", id), func(e *hinscorev1.Entity) bool { return e.GetId() == id })
}

// checkByHand states 2026-05's figures of figuresWorld by hand.
func checkByHand(t *testing.T, may []*hinscorev1.Scorecard) {
	north, south, east := cardOf(t, may, "north"), cardOf(t, may, "south"), cardOf(t, may, "east")
	checkTimesByHand(t, north)
	checkRankingByHand(t, north, south, east)
	checkRefusalsByHand(t, north, south)
	checkDevelopersByHand(t, north)
	checkSmallSamplesByHand(t, north, east)
	checkOutputsByHand(t, north)
}

// checkTimesByHand: north-1's times to acknowledge and to fulfil, and
// north-2's within each kind's SLA.
func checkTimesByHand(t *testing.T, north *hinscorev1.Scorecard) {
	t.Helper()
	n1 := entityOf(t, north.GetResponders(), "north-1")
	// N1's times to acknowledge, sorted: 100, 150, 200, 250, 300, 350, 400,
	// 450, 500, 550, 600, 700 … 3000 (35 within the 60 s SLA), then 65,
	// 70, 75, 80 s: 39 values; ⌊0.5·39⌋ = 19 → 1.5 s, ⌊0.9·39⌋ = 35 → 65 s,
	// ⌊0.99·39⌋ = 38 → 80 s.
	a := n1.GetTimeToAcknowledge()
	if a.GetCount() != 39 || a.GetP50Ms() != 1500 || a.GetP90Ms() != 65_000 || a.GetP99Ms() != 80_000 ||
		a.GetWithinSla().GetCount() != 35 || a.GetWithinSla().GetTotal() != 39 {
		t.Errorf("north-1 tta %v, want 39: 1.5 s / 65 s / 80 s, 35 within SLA", a)
	}
	// Its times to fulfil: 1..30 s, 70, 130, 190, 250 s (the refusals'
	// 900 ms do not count): 34 values → 18 s, 70 s, 250 s; 30 within.
	f := n1.GetTimeToFulfil()
	if f.GetCount() != 34 || f.GetP50Ms() != 18_000 || f.GetP90Ms() != 70_000 || f.GetP99Ms() != 250_000 || f.GetWithinSla().GetCount() != 30 {
		t.Errorf("north-1 ttf %v, want 34: 18 s / 70 s / 250 s, 30 within SLA", f)
	}
	// north-2's document retrievals take 100..280 s: late for a query, in
	// time for their own 5 min SLA. 38 fulfilments: 20 + 8 + 10; within:
	// the 20 of N2a (2..11.5 s), 7 of N2b's 8 queries (12..54 s, then
	// 61 s) and all 10 retrievals.
	n2 := entityOf(t, north.GetResponders(), "north-2")
	if w := n2.GetTimeToFulfil().GetWithinSla(); w.GetCount() != 20+7+10 || w.GetTotal() != 38 {
		t.Errorf("north-2 ttf within SLA %v, want 37 of 38", w)
	}
	if !slices.Equal(n2.GetIdentifiers(), []string{"N2a", "N2b"}) || n2.GetName() != "North Clinic" || n2.GetDeveloper() != "vendorB" {
		t.Errorf("north-2: identifiers %v, name %q, developer %q", n2.GetIdentifiers(), n2.GetName(), n2.GetDeveloper())
	}
}

// checkRankingByHand: the responders' peer medians, north-1's and
// south-2's rankings and north-1's trend.
func checkRankingByHand(t *testing.T, north, south, east *hinscorev1.Scorecard) {
	t.Helper()
	n1 := entityOf(t, north.GetResponders(), "north-1")
	// Peer median of responders: every other responder with >= 30
	// requests, all networks. Suspect rates: north-1 6/40 = 0.15, north-2
	// 2/40 = 0.05, NX 0/30, south-1 0/52, south-2 18/60 = 0.3; north-3
	// (6) and east-1 (10) are no peers.
	for _, tt := range []struct {
		c   *hinscorev1.Scorecard
		id  string
		med float64
	}{
		{north, "north-1", 0.025}, // 0, 0, 0.05, 0.3
		{north, "north-2", 0.075}, // 0, 0, 0.15, 0.3
		{north, "NX", 0.1},        // 0, 0.05, 0.15, 0.3
		{south, "south-2", 0.025}, // 0, 0, 0.05, 0.15
		{north, "north-3", 0.05},  // all five
		{east, "east-1", 0.05},
	} {
		e := entityOf(t, tt.c.GetResponders(), tt.id)
		if !near(e.GetRanking().GetPeerMedian(), tt.med) {
			t.Errorf("%s: peer median %g, want %g", tt.id, e.GetRanking().GetPeerMedian(), tt.med)
		}
	}
	// north-1: lower bound of 6/40 above the median and the threshold:
	// flagged, in 2026-03 too, but not 2026-04: 2 of 4, 1 in a row.
	low, _ := wilsonRoots(6, 40)
	rk := n1.GetRanking()
	if low < 0.07 || low > 0.071 || !near(rk.GetExcessEvents(), (low-0.025)*40) || !near(rk.GetPriority(), 2*(low-0.025)*40) ||
		!rk.GetFlagged() || rk.GetFlaggedPeriods() != 2 || rk.GetConsecutive() != 1 || rk.GetRepeatOffender() {
		t.Errorf("north-1 ranking %v (lower bound %g)", rk, low)
	}
	if fl := n1.GetFlags(); len(fl) != 1 || fl[0].GetKind() != "suspect" || fl[0].GetEvidenceTotal() != 6 {
		t.Errorf("north-1 flags %v, want one suspect flag over 6 chains", fl)
	}
	// south-2: flagged in all three months: a repeat offender, 3 in a row.
	s2 := entityOf(t, south.GetResponders(), "south-2")
	low, _ = wilsonRoots(18, 60)
	if rk := s2.GetRanking(); !rk.GetRepeatOffender() || rk.GetConsecutive() != 3 || !near(rk.GetPriority(), 4*(low-0.025)*60) || rk.GetRank() != 1 {
		t.Errorf("south-2 ranking %v", rk)
	}
	var trend []string
	for _, tp := range n1.GetTrend() {
		trend = append(trend, fmt.Sprintf("%s:%d/%d:%v", tp.GetPeriod(), tp.GetSuspect().GetCount(), tp.GetRequests(), tp.GetFlagged()))
	}
	if want := "2026-02:0/0:false 2026-03:8/40:true 2026-04:0/0:false 2026-05:6/40:true"; strings.Join(trend, " ") != want {
		t.Errorf("north-1 trend %v, want %s", trend, want)
	}
}

// checkRefusalsByHand: the SLA boundaries of south-1, and the refusals
// and exception overuse of south-1 and north-1.
func checkRefusalsByHand(t *testing.T, north, south *hinscorev1.Scorecard) {
	t.Helper()
	// Boundaries: tta and ttf <= SLA is within; ttf of exactly 3 × SLA is
	// late, not suspect.
	s1 := entityOf(t, south.GetResponders(), "south-1")
	if a, f := s1.GetTimeToAcknowledge().GetWithinSla(), s1.GetTimeToFulfil().GetWithinSla(); a.GetCount() != 51 || a.GetTotal() != 52 ||
		f.GetCount() != 41 || f.GetTotal() != 42 || s1.GetSuspect().GetCount() != 0 {
		t.Errorf("south-1: tta within %v, ttf within %v, suspect %v; want 51/52, 41/42, 0", a, f, s1.GetSuspect())
	}

	// Refusals: south-1 cites 171.204 in 10 of 52; the other responder
	// peers' shares 0.05 (north-1), 0, 0, 0 → median 0: overuse. north-1's
	// 2 of 40: peers' shares 0, 0, 10/52, 0 → 0, but its lower bound is
	// below the 2% floor.
	n1 := entityOf(t, north.GetResponders(), "north-1")
	if x := s1.GetRefusals(); len(x) != 1 || x[0].GetCode() != "171.204" || x[0].GetRate().GetCount() != 10 || x[0].GetPeerMedian() != 0 || !x[0].GetOveruse() {
		t.Errorf("south-1 refusals %v", x)
	}
	var codes []string
	for _, x := range n1.GetRefusals() {
		codes = append(codes, fmt.Sprintf("%s=%d/%v", x.GetCode(), x.GetRate().GetCount(), x.GetOveruse()))
	}
	if want := "redirect-portal=1/false 171.204=2/false"; strings.Join(codes, " ") != want {
		t.Errorf("north-1 refusals %v, want %s", codes, want)
	}
	if fl := s1.GetFlags(); len(fl) != 1 || fl[0].GetKind() != "exception_overuse" || fl[0].GetExceptionCode() != "171.204" || fl[0].GetEvidenceTotal() != 10 {
		t.Errorf("south-1 flags %v, want exception_overuse 171.204 over 10 chains", fl)
	}
}

// checkDevelopersByHand: north's developers, their peer medians and times.
func checkDevelopersByHand(t *testing.T, north *hinscorev1.Scorecard) {
	t.Helper()
	// Developers within north: vendorA = north-1 + north-3 (46 requests,
	// 12 suspect), vendorB = north-2, "" = NX (shown, never ranked).
	var devs []string
	for _, d := range north.GetDevelopers() {
		devs = append(devs, fmt.Sprintf("%s:%s:%d:%d", d.GetId(), d.GetName(), d.GetRequests(), d.GetSuspect().GetCount()))
	}
	if want := ":(developer unknown):30:0 vendorA:vendorA:46:12 vendorB:vendorB:40:2"; strings.Join(devs, " ") != want {
		t.Errorf("north developers %v, want %s", devs, want)
	}
	// Developer peers: north/vendorA 12/46, north/vendorB 0.05, south/vendorA
	// 0, south/vendorC 0.3 (east/vendorC has 10, the unknown bucket none).
	va := entityOf(t, north.GetDevelopers(), "vendorA")
	unknown := entityOf(t, north.GetDevelopers(), "")
	if !near(va.GetRanking().GetPeerMedian(), 0.05) || !near(unknown.GetRanking().GetPeerMedian(), (0.05+12.0/46)/2) {
		t.Errorf("developer peer medians: vendorA %g, unknown %g", va.GetRanking().GetPeerMedian(), unknown.GetRanking().GetPeerMedian())
	}
	if unknown.GetRanking().GetFlagged() || unknown.GetRanking().GetExcessEvents() != 0 {
		t.Errorf("the unknown developer is ranked: %v", unknown.GetRanking())
	}
	// vendorA's times are those of its responders' rows together.
	if a := va.GetTimeToAcknowledge(); a.GetCount() != 39 || a.GetP50Ms() != 1500 {
		t.Errorf("north vendorA tta %v, want north-1's (north-3 never acknowledged)", a)
	}
}

// checkSmallSamplesByHand: north-3 and east are small samples; the
// networks' peer medians.
func checkSmallSamplesByHand(t *testing.T, north, east *hinscorev1.Scorecard) {
	t.Helper()
	// Small samples are shown, marked, never flagged, and are nobody's
	// peer: north-3 is 6 of 6 suspect (lower bound 61%).
	n3 := entityOf(t, north.GetResponders(), "north-3")
	if s := n3.GetSuspect(); s.GetCount() != 6 || s.GetTotal() != 6 || !s.GetSmallSample() || s.GetCiLow() < 0.6 {
		t.Errorf("north-3 suspect %v", s)
	}
	if rk := n3.GetRanking(); rk.GetFlagged() || rk.GetExcessEvents() != 0 || rk.GetPriority() != 0 || len(n3.GetFlags()) > 0 {
		t.Errorf("north-3 is flagged or ranked: %v, flags %v", rk, n3.GetFlags())
	}
	for _, o := range n3.GetOutcomes() {
		if !o.GetRate().GetSmallSample() {
			t.Errorf("north-3 %s not marked a small sample", o.GetOutcome())
		}
	}
	if !east.GetSuspect().GetSmallSample() || east.GetRanking().GetFlagged() || len(east.GetFlags()) > 0 {
		t.Errorf("east: %v, ranking %v", east.GetSuspect(), east.GetRanking())
	}
	// The network peers: only north and south have >= 30 requests.
	if got, want := north.GetRanking().GetPeerMedian(), 18.0/112; !near(got, want) {
		t.Errorf("north peer median %g, want south's 18/112", got)
	}
	if got, want := east.GetRanking().GetPeerMedian(), (18.0/112+14.0/116)/2; !near(got, want) {
		t.Errorf("east peer median %g, want the mean of north's 14/116 and south's 18/112", got)
	}
}

// checkOutputsByHand: north's page and CSV show north-3 as a small sample
// and north-1's time to acknowledge.
func checkOutputsByHand(t *testing.T, north *hinscorev1.Scorecard) {
	t.Helper()
	// The page shows north-3 with its figures, marked, without a flag.
	page, err := HTML(OperatorCopy(north))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(page, []byte("<td class=\"l\">North Cottage"))
	if i < 0 {
		t.Fatal("north-3 is not on the page")
	}
	row := page[i : i+bytes.Index(page[i:], []byte("</tr>"))]
	if !bytes.Contains(row, []byte(`<span class="ss">small sample</span>`)) || bytes.Contains(row, []byte(`class="flag`)) || !bytes.Contains(row, []byte("100.0%")) {
		t.Errorf("north-3's row on the page: %s", row)
	}

	// The CSV rows say so too.
	b, err := CSV(OperatorCopy(north))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, r := range recs[1:] {
		if r[col["level"]] == LevelResponder && r[col["id"]] == "north-3" {
			if r[col["small_sample"]] != "true" || r[col["flagged"]] != "false" || r[col["requests"]] != "6" {
				t.Errorf("north-3 CSV row: small_sample %s, flagged %s, requests %s", r[col["small_sample"]], r[col["flagged"]], r[col["requests"]])
			}
		}
		if r[col["level"]] == LevelResponder && r[col["id"]] == "north-1" {
			if i, ok := col["tta_within_sla_rate"]; !ok || r[col["tta_p50_ms"]] != "1500" || r[i] != f6(35.0/39) {
				t.Errorf("north-1 CSV row: tta p50 %s, within SLA %s (column present: %v)", r[col["tta_p50_ms"]], r[i], ok)
			}
		}
	}
}
