package scorecard

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/domain/testenv"
)

// historyStart is the first request of the six-month history.
var historyStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// history generates six months of requests from the simulator's networks
// with designated responder behaviours, and stores each request as the
// outcome row the pipeline would have written for it (its truth class,
// latency as time to acknowledge and to fulfil), plus the simulator's
// organisation directory. Sending 90 000 requests through MLLP, the linker
// and the writer would take minutes; the pipeline's own end-to-end test
// checks that path against the same truth.
func history(t *testing.T, conn driver.Conn) *simulator.Plan {
	t.Helper()
	plan, err := simulator.Generate(simulator.Config{
		Requests: 90_000, Seed: 8, Start: historyStart, Span: historyStart.AddDate(0, 6, 0).Sub(historyStart),
		Networks: simulator.BehaviourNetworks(), RunaroundShare: -1, DuplicateRate: -1, OutOfOrderRate: -1,
		MalformedRate: -1, NotificationRate: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	storePlan(t, conn, plan, historyStart)
	return plan
}

// storePlan stores every request of the plan as the outcome row the
// pipeline would have written for it, and the plan's directory, loaded at
// loadedAt.
func storePlan(t *testing.T, conn driver.Conn, plan *simulator.Plan, loadedAt time.Time) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_outcomes (outcome_id, version, network, request_id, correlation_key,
		request_kind, requester_org, responder_org, outcome, exception_code, requested_at, requested_at_ms, acknowledged_at_ms,
		answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms, rule_version)`)
	if err != nil {
		t.Fatal(err)
	}
	sla, grace := uint64(simulator.QuerySLA.Milliseconds()), uint64(simulator.QueryGrace.Milliseconds())
	for _, r := range plan.Requests() {
		var ackMs, ansMs int64
		var tta, ttf *uint64
		if r.Answered() {
			ackMs, ansMs = r.AnsweredAt.UnixMilli(), r.AnsweredAt.UnixMilli()
			l := uint64(r.LatencyMs)
			tta, ttf = &l, &l
		}
		if err := b.Append(truthOutcomeID(r), uint64(1), r.Network, r.ControlID,
			r.Network+"|"+r.Requester+"|"+r.ControlID, "patient_query", r.Requester, r.Responder, r.Outcome, r.ExceptionCode,
			r.RequestedAt, r.RequestedAt.UnixMilli(), ackMs, ansMs, tta, ttf, sla, grace, "history-test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	dir, err := plan.DirectoryCSV()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chstore.LoadOrganizations(ctx, conn, bytes.NewReader(dir), loadedAt); err != nil {
		t.Fatal(err)
	}
}

// truthOutcomeID is the outcome id storePlan gives a request.
func truthOutcomeID(r simulator.TruthRow) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(r.Network+"/"+r.ControlID))
}

// exactQuantile is ClickHouse's quantileExact: the element at ⌊level·n⌋ of
// the sorted values.
func exactQuantile(sorted []uint64, level float64) uint64 {
	return sorted[int(level*float64(len(sorted)))]
}

// historyCell is a network's responder facility in a month of the history.
type historyCell struct {
	network, facility string
	month             int
}

// historyTruth is what the plan says of the history: each responder's
// behaviour by network/facility, and the latencies of its fulfilments by
// network, facility and month.
type historyTruth struct {
	behaviour map[string]string // network/facility → behaviour
	latencies map[historyCell][]uint64
}

func historyTruthOf(plan *simulator.Plan) historyTruth {
	h := historyTruth{behaviour: map[string]string{}, latencies: map[historyCell][]uint64{}}
	for _, r := range plan.Responders() {
		h.behaviour[r.Network+"/"+r.Facility] = r.Behaviour
	}
	for _, r := range plan.Requests() {
		if r.Outcome == simulator.Fulfilled || r.Outcome == simulator.FulfilledLate {
			k := historyCell{r.Network, r.Responder, simulator.MonthIndex(historyStart, r.RequestedAt)}
			h.latencies[k] = append(h.latencies[k], uint64(r.LatencyMs))
		}
	}
	return h
}

func TestSixMonthHistory(t *testing.T) {
	conn := testDatabase(t)
	ctx := context.Background()
	plan := history(t, conn)
	cards, err := Build(ctx, conn, Query{Granularity: Month}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(cards) != 3*6 {
		t.Fatalf("%d monthly cards, want 18", len(cards))
	}
	h := historyTruthOf(plan)

	var cells, covered int
	for _, c := range cards {
		start := time.UnixMilli(c.GetPeriodStartMs()).UTC()
		month := simulator.MonthIndex(historyStart, start)
		prof, _ := plan.Profile(c.GetNetwork())
		for _, e := range c.GetResponders() {
			if len(e.GetIdentifiers()) != 1 {
				t.Fatalf("%s %s: identifiers %q, want one facility", c.GetNetwork(), e.GetId(), e.GetIdentifiers())
			}
			fac := e.GetIdentifiers()[0]
			b := h.behaviour[c.GetNetwork()+"/"+fac]
			where := fmt.Sprintf("%s %s %s (%s)", c.GetPeriod(), c.GetNetwork(), fac, b)
			checkBehaviour(t, where, e, b, fac, prof, month)

			// Every class the responder can produce: is the true rate inside
			// the reported Wilson interval?
			truth := simulator.TrueRates(prof, fac, historyStart, start)
			for _, o := range e.GetOutcomes() {
				p, ok := truth[o.GetOutcome()]
				if !ok {
					continue
				}
				cells++
				if r := o.GetRate(); r.GetCiLow() <= p && p <= r.GetCiHigh() {
					covered++
				}
			}
			checkHistoryTTF(t, where, e, h.latencies[historyCell{c.GetNetwork(), fac, month}])
		}
	}
	if cells == 0 || float64(covered) < 0.95*float64(cells) {
		t.Errorf("true rate inside its Wilson interval in %d of %d cells (%.1f%%), want at least 95%%", covered, cells, 100*float64(covered)/float64(cells))
	}
	t.Logf("Wilson coverage: %d of %d cells (%.1f%%)", covered, cells, 100*float64(covered)/float64(max(cells, 1)))

	checkOffendersAboveClean(t, cards, h.behaviour)

	t.Run("pages open in chromium", func(t *testing.T) { checkPages(t, cards) })

	checkRegenerated(t, ctx, conn, cards)
}

// checkBehaviour checks responder e's flags (each with its own chains as
// evidence) and ranking (named where) against its designated behaviour b
// in the month-th month of the history.
func checkBehaviour(t *testing.T, where string, e *hinscorev1.Entity, b, fac string, prof simulator.NetworkProfile, month int) {
	t.Helper()
	rk := e.GetRanking()
	kinds := map[string]bool{}
	for _, f := range e.GetFlags() {
		kinds[f.GetKind()] = true
		if len(f.GetEvidence()) == 0 || f.GetEvidenceTotal() < uint64(len(f.GetEvidence())) {
			t.Errorf("%s: flag %s lists %d of %d chains", where, f.GetKind(), len(f.GetEvidence()), f.GetEvidenceTotal())
		}
		for _, ev := range f.GetEvidence() {
			if ev.GetResponderOrg() != fac || ev.GetRequestId() == "" || ev.GetOutcomeId() == "" {
				t.Errorf("%s: evidence %v is not one of its chains", where, ev)
			}
		}
	}
	switch b {
	case simulator.BehaviourRepeatOffender:
		if !rk.GetFlagged() {
			t.Errorf("%s: not flagged (suspect %v)", where, e.GetSuspect())
		}
		if month >= 2 && (!rk.GetRepeatOffender() || !kinds["repeat_offender"]) {
			t.Errorf("%s: not a repeat offender after %d flagged periods", where, rk.GetFlaggedPeriods())
		}
		if rk.GetPriority() <= 0 {
			t.Errorf("%s: priority %g", where, rk.GetPriority())
		}
	case simulator.BehaviourClean, simulator.BehaviourSlow:
		if len(e.GetFlags()) > 0 || rk.GetFlagged() || rk.GetRepeatOffender() {
			t.Errorf("%s: flagged %v (suspect %v)", where, kinds, e.GetSuspect())
		}
	case simulator.BehaviourOccasional:
		i := slices.IndexFunc(prof.ResponderProfiles, func(r simulator.ResponderProfile) bool { return r.Facility == fac })
		bad := slices.Contains(prof.ResponderProfiles[i].BadMonths, month)
		if rk.GetFlagged() != bad || rk.GetRepeatOffender() {
			t.Errorf("%s: flagged %v, repeat %v; bad month %v", where, rk.GetFlagged(), rk.GetRepeatOffender(), bad)
		}
	case simulator.BehaviourExceptionOveruser:
		if !kinds["exception_overuse"] || rk.GetFlagged() {
			t.Errorf("%s: flags %v, want exception_overuse only", where, kinds)
		}
		for _, f := range e.GetFlags() {
			if f.GetKind() == "exception_overuse" && f.GetExceptionCode() != "171.204" {
				t.Errorf("%s: overuse of %s, want 171.204", where, f.GetExceptionCode())
			}
		}
	case simulator.BehaviourLowVolume:
		if !e.GetSuspect().GetSmallSample() || len(e.GetFlags()) > 0 || rk.GetFlagged() {
			t.Errorf("%s: small sample %v, flags %v", where, e.GetSuspect().GetSmallSample(), kinds)
		}
	default:
		t.Errorf("%s: unknown behaviour", where)
	}
}

// checkHistoryTTF compares e's time to fulfil with a direct computation on
// the latencies of the same rows.
func checkHistoryTTF(t *testing.T, where string, e *hinscorev1.Entity, latencies []uint64) {
	t.Helper()
	ls := slices.Clone(latencies)
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	ttf := e.GetTimeToFulfil()
	if uint64(len(ls)) != ttf.GetCount() {
		t.Errorf("%s: ttf count %d, want %d", where, ttf.GetCount(), len(ls))
		return
	}
	if len(ls) > 0 {
		want := []uint64{exactQuantile(ls, 0.5), exactQuantile(ls, 0.9), exactQuantile(ls, 0.99)}
		got := []uint64{ttf.GetP50Ms(), ttf.GetP90Ms(), ttf.GetP99Ms()}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ttf p50/p90/p99 %v, want %v", where, got, want)
		}
		var within uint64
		for _, l := range ls {
			if l <= uint64(simulator.QuerySLA.Milliseconds()) {
				within++
			}
		}
		if ttf.GetWithinSla().GetCount() != within {
			t.Errorf("%s: within SLA %d, want %d", where, ttf.GetWithinSla().GetCount(), within)
		}
	}
}

// checkOffendersAboveClean checks the ranking across networks: every
// repeat offender above every clean responder, month after month.
func checkOffendersAboveClean(t *testing.T, cards []*hinscorev1.Scorecard, behaviour map[string]string) {
	t.Helper()
	for _, month := range cardsByPeriod(cards) {
		worstOffender, bestClean := uint32(0), uint32(1<<31)
		for _, c := range month {
			for _, e := range c.GetResponders() {
				switch behaviour[c.GetNetwork()+"/"+e.GetIdentifiers()[0]] {
				case simulator.BehaviourRepeatOffender:
					worstOffender = max(worstOffender, e.GetRanking().GetRank())
				case simulator.BehaviourClean:
					bestClean = min(bestClean, e.GetRanking().GetRank())
				}
			}
		}
		if worstOffender == 0 || worstOffender >= bestClean {
			t.Errorf("%s: worst repeat offender ranked %d, best clean responder %d", month[0].GetPeriod(), worstOffender, bestClean)
		}
	}
}

// checkRegenerated checks that regenerating, from the view again and from
// the rollup, gives the same numbers as cards.
func checkRegenerated(t *testing.T, ctx context.Context, conn driver.Conn, cards []*hinscorev1.Scorecard) {
	t.Helper()
	again, err := Build(ctx, conn, Query{Granularity: Month, From: historyStart.AddDate(0, 3, 0), To: historyStart.AddDate(0, 4, 0)}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := chstore.RebuildRollups(ctx, conn, testNow, monthsOf(6)...); err != nil {
		t.Fatal(err)
	}
	rolled, err := Build(ctx, conn, Query{Granularity: Month, Source: SourceRollup}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(rolled) != len(cards) {
		t.Fatalf("rollup: %d cards, want %d", len(rolled), len(cards))
	}
	for i := range cards {
		if !proto.Equal(rolled[i], cards[i]) {
			t.Errorf("%s %s: the rollup's card differs from the view's", cards[i].GetNetwork(), cards[i].GetPeriod())
		}
	}
	for _, a := range again {
		i := slices.IndexFunc(cards, func(c *hinscorev1.Scorecard) bool {
			return c.GetNetwork() == a.GetNetwork() && c.GetPeriod() == a.GetPeriod()
		})
		if i < 0 || !proto.Equal(a, cards[i]) {
			t.Errorf("%s %s: regenerating one period gives different numbers", a.GetNetwork(), a.GetPeriod())
		}
	}
	if len(again) != 3 {
		t.Errorf("regenerating 2026-04: %d cards, want 3", len(again))
	}
}

func cardsByPeriod(cards []*hinscorev1.Scorecard) [][]*hinscorev1.Scorecard {
	m := map[int64][]*hinscorev1.Scorecard{}
	var keys []int64
	for _, c := range cards {
		if m[c.GetPeriodStartMs()] == nil {
			keys = append(keys, c.GetPeriodStartMs())
		}
		m[c.GetPeriodStartMs()] = append(m[c.GetPeriodStartMs()], c)
	}
	slices.Sort(keys)
	out := make([][]*hinscorev1.Scorecard, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func monthsOf(n int) []time.Time {
	var out []time.Time
	for i := range n {
		out = append(out, historyStart.AddDate(0, i, 0))
	}
	return out
}

// checkPages writes the files of one month and opens its network pages and
// offenders page in headless Chromium: no console message, a screenshot.
func checkPages(t *testing.T, cards []*hinscorev1.Scorecard) {
	chromium := testenv.Getenv(t, "HINSCORE_TEST_CHROMIUM", "scripts/chromium.sh installs chromium and prints its path")
	out := t.TempDir()
	var month []*hinscorev1.Scorecard
	for _, c := range cards {
		if c.GetPeriod() == "2026-04" {
			month = append(month, c)
		}
	}
	if err := WriteFiles(out, month); err != nil {
		t.Fatal(err)
	}
	pages := []string{"offenders.html"}
	for _, c := range month {
		pages = append(pages, c.GetNetwork()+".html")
	}
	for _, page := range pages {
		path := filepath.Join(out, "2026-04", page)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Self-contained: nothing fetched from anywhere.
		for _, ref := range []string{"http://", "https://", "src=", "<link", "<script"} {
			if bytes.Contains(b, []byte(ref)) {
				t.Errorf("%s refers to %q", page, ref)
			}
		}
		png := filepath.Join(out, page+".png")
		console, err := Screenshot(context.Background(), chromium, path, png)
		if err != nil {
			t.Fatal(err)
		}
		if len(console) > 0 {
			t.Errorf("%s: console messages:\n%s", page, strings.Join(console, "\n"))
		}
		shot, err := os.ReadFile(png)
		if err != nil || !bytes.HasPrefix(shot, []byte("\x89PNG")) || len(shot) < 10_000 {
			t.Errorf("%s: screenshot of %d bytes (%v)", page, len(shot), err)
		}
	}
	if !bytes.Contains(mustRead(t, filepath.Join(out, "2026-04", "offenders.html")), []byte("repeat_offender")) {
		t.Error("offenders page lists no repeat offender")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
