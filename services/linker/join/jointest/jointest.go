// Package jointest holds what the tests of the join and of the linker
// around it share: events built by hand or generated, and the join's
// outcomes read back as messages.
package jointest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/lib/domain/partition"
	"github.com/hinscore/hinscore/services/linker/join"
)

// T0 is the event-time origin of the tests (2026-01-01T00:00:00Z).
var T0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const S = int64(1000) // one second in milliseconds

// At is T0 plus ms milliseconds, in epoch milliseconds.
func At(ms int64) int64 { return T0.UnixMilli() + ms }

// Ev builds an event; id is its message id and, with the network, its event id.
func Ev(network string, role hinscorev1.Role, id, key string, t int64, st hinscorev1.Status) *hinscorev1.ExchangeEvent {
	return &hinscorev1.ExchangeEvent{
		EventId:        network + "/" + id,
		Network:        network,
		MessageId:      id,
		MessageType:    role.String(),
		Role:           role,
		RequestKind:    "patient_query",
		CorrelationKey: key,
		RequesterOrg:   "clinic",
		ResponderOrg:   "hospital",
		EventTimeMs:    At(t),
		Status:         st,
		PatientToken:   "tok",
		MappingVersion: "map/1",
	}
}

// Req is a request of network "net".
func Req(id, key string, t int64) *hinscorev1.ExchangeEvent {
	return Ev("net", hinscorev1.Role_ROLE_REQUEST, id, key, t, hinscorev1.Status_STATUS_UNSPECIFIED)
}

// Resp is a response of network "net".
func Resp(id, key string, t int64, st hinscorev1.Status) *hinscorev1.ExchangeEvent {
	return Ev("net", hinscorev1.Role_ROLE_RESPONSE, id, key, t, st)
}

// Interim is an interim answer (accepted) of network "net".
func Interim(id, key string, t int64) *hinscorev1.ExchangeEvent {
	return Ev("net", hinscorev1.Role_ROLE_INTERIM, id, key, t, hinscorev1.Status_STATUS_ACCEPTED)
}

// Cancel is the requester's cancel, in network "net".
func Cancel(id, key string, t int64) *hinscorev1.ExchangeEvent {
	return Ev("net", hinscorev1.Role_ROLE_CANCEL, id, key, t, hinscorev1.Status_STATUS_CANCELLED)
}

// Tick is a notification: it only moves the network's event clock.
func Tick(t int64) *hinscorev1.ExchangeEvent {
	return Ev("net", hinscorev1.Role_ROLE_NOTIFICATION, fmt.Sprintf("tick-%d", t), "", t, hinscorev1.Status_STATUS_UNSPECIFIED)
}

// Window is the width of the windows of the tests' cross-community keys:
// ten minutes, T0 starting one.
const Window = 600 * S

// Gateway sides, short.
const (
	Initiating = hinscorev1.Side_SIDE_INITIATING
	Responding = hinscorev1.Side_SIDE_RESPONDING
)

// XC is one gateway's record of a cross-community document query in network
// "net": role request or response, keyed by the transaction's base windowed
// at its time, purpose treatment, both home communities. Its event id is
// the network, the side and id, so the two sides' records never collide.
func XC(side hinscorev1.Side, role hinscorev1.Role, id, base string, t int64, st hinscorev1.Status) *hinscorev1.ExchangeEvent {
	e := Ev("net", role, id, partition.Windowed(base, At(t), Window), t, st)
	e.EventId = "net/" + side.String() + "/" + id
	e.Format = hinscorev1.Format_FORMAT_SOAP
	e.Side = side
	e.TransactionId = base
	e.RequestKind = "document_query"
	e.Purpose, e.PurposeCode = "treatment", "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1|T-TRTMNT"
	e.RequesterCommunity, e.ResponderCommunity = "urn:oid:1.2.3", "urn:oid:4.5.6"
	return e
}

// Audit is the pair of events one gateway's audit record of a
// cross-community document query yields: its request and its answer, both
// at the time the record was written and untimed, in format ATNA.
func Audit(side hinscorev1.Side, id, base string, t int64, st hinscorev1.Status) []*hinscorev1.ExchangeEvent {
	var out []*hinscorev1.ExchangeEvent
	for _, role := range []hinscorev1.Role{hinscorev1.Role_ROLE_REQUEST, hinscorev1.Role_ROLE_RESPONSE} {
		e := XC(side, role, id+"-"+strings.ToLower(strings.TrimPrefix(role.String(), "ROLE_")), base, t, st)
		if role == hinscorev1.Role_ROLE_REQUEST {
			e.Status = hinscorev1.Status_STATUS_UNSPECIFIED
		}
		e.Format, e.Untimed = hinscorev1.Format_FORMAT_ATNA, true
		out = append(out, e)
	}
	return out
}

// With returns e changed by f.
func With(e *hinscorev1.ExchangeEvent, f func(*hinscorev1.ExchangeEvent)) *hinscorev1.ExchangeEvent {
	f(e)
	return e
}

// Got is the part of an outcome the table compares, printed compactly.
type Got struct {
	Key, Class        string
	Version           uint64
	Request, Response string
	TTF, TTA          int64 // -1 when absent
	DecidedAt         int64 // relative to T0
	Steps             string
	Reasons           string
	Sides             string // cross-community: initiating, responding, both
	Untimed           bool
}

// String is the line the tables compare.
func (g Got) String() string {
	s := fmt.Sprintf("%s v%d %s req=%s resp=%s ttf=%d tta=%d decided=%d steps=%s",
		g.Key, g.Version, g.Class, g.Request, g.Response, g.TTF, g.TTA, g.DecidedAt, g.Steps)
	if g.Reasons != "" {
		s += " reasons=" + g.Reasons
	}
	if g.Sides != "" {
		s += " sides=" + g.Sides
	}
	if g.Untimed {
		s += " untimed"
	}
	return s
}

// Summarize is what the tables compare of an outcome.
func Summarize(o *hinscorev1.Outcome) Got {
	g := Got{
		Key: o.GetCorrelationKey(), Class: outcomeclass.Name(o.GetOutcomeClass()), Version: o.GetVersion(),
		Request: o.GetRequestId(), Response: o.GetResponseId(), TTF: -1, TTA: -1,
		DecidedAt: o.GetDecidedAtMs() - T0.UnixMilli(),
	}
	if o.GetHasTtf() {
		g.TTF = int64(o.GetTtfMs())
	}
	if o.GetHasTta() {
		g.TTA = int64(o.GetTtaMs())
	}
	var ids []string
	for _, st := range o.GetSteps() {
		ids = append(ids, st.GetMessageId())
	}
	g.Steps = strings.Join(ids, ",")
	g.Reasons = strings.Join(o.GetReasonCodes(), ",")
	g.Sides, g.Untimed = o.GetSides(), o.GetUntimed()
	return g
}

// GenEvents makes a reproducible mix of chains over one hour of event time:
// every kind of answer, interims, cancels, orphans, silence.
func GenEvents(seed uint64, chains int) []*hinscorev1.ExchangeEvent {
	rng := rand.New(rand.NewPCG(seed, 7))
	statuses := []hinscorev1.Status{
		hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_OK,
		hinscorev1.Status_STATUS_PARTIAL, hinscorev1.Status_STATUS_NOT_FOUND, hinscorev1.Status_STATUS_REFUSED,
		hinscorev1.Status_STATUS_REDIRECTED, hinscorev1.Status_STATUS_ERROR_TRANSIENT,
	}
	var out []*hinscorev1.ExchangeEvent
	for i := range chains {
		key := fmt.Sprintf("k%d", i)
		start := int64(i) * 3600 * S / int64(chains)
		kind := rng.IntN(10)
		if kind != 0 { // kind 0: an orphan answer, no request
			out = append(out, Req(fmt.Sprintf("r%d", i), key, start))
		}
		switch {
		case kind == 1: // silence: unanswered
		case kind == 2:
			out = append(out, Cancel(fmt.Sprintf("c%d", i), key, start+rng.Int64N(20*S)))
		default:
			if rng.IntN(3) == 0 {
				out = append(out, Interim(fmt.Sprintf("i%d", i), key, start+rng.Int64N(2*S)))
			}
			a := Resp(fmt.Sprintf("a%d", i), key, start+2*S+rng.Int64N(150*S), statuses[rng.IntN(len(statuses))])
			if a.Status == hinscorev1.Status_STATUS_REFUSED && rng.IntN(2) == 0 {
				a.ExceptionCode = "171.204"
			}
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b *hinscorev1.ExchangeEvent) int {
		return int(a.EventTimeMs - b.EventTimeMs)
	})
	return append(out, Tick(3600*S+24*3600*S))
}

// GenCrossEvents makes a reproducible mix of cross-community transactions
// over one hour of event time, in the order a linker would receive them:
// most audited by both gateways (each record a request and an answer, untimed,
// the two a few seconds apart, one in twenty straddling a window boundary),
// some by one gateway only, some records sent twice, some arriving up to
// 20 s late and a few 1 to 10 minutes late; one in ten seen as timed SOAP
// copies instead. Answers of every
// kind, and failures recorded by either side. The base of transaction i's
// key is x<i>.
func GenCrossEvents(seed uint64, transactions int) []*hinscorev1.ExchangeEvent {
	rng := rand.New(rand.NewPCG(seed, 11))
	statuses := []hinscorev1.Status{
		hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_OK, hinscorev1.Status_STATUS_OK,
		hinscorev1.Status_STATUS_NOT_FOUND, hinscorev1.Status_STATUS_REFUSED, hinscorev1.Status_STATUS_ERROR_TRANSIENT,
	}
	kinds := []string{"patient_discovery", "document_query", "document_retrieve"}
	purposes := []string{"treatment", "treatment", "individual_access", ""}
	type arrival struct {
		e  *hinscorev1.ExchangeEvent
		at int64
	}
	var arr []arrival
	for i := range transactions {
		base := fmt.Sprintf("x%d", i)
		start := int64(i) * 3600 * S / int64(transactions)
		if i%20 == 0 {
			start = start - start%Window + Window - 2*S // just before a boundary
		}
		times := [2]int64{start, start + rng.Int64N(5*S)}
		st := statuses[rng.IntN(len(statuses))]
		var evs []*hinscorev1.ExchangeEvent
		if rng.IntN(10) == 0 {
			evs = append(evs, XC(Initiating, hinscorev1.Role_ROLE_REQUEST, base+"-q", base, times[0], 0),
				XC(Responding, hinscorev1.Role_ROLE_RESPONSE, base+"-a", base, times[1]+rng.Int64N(90*S), st))
		} else {
			seen := rng.IntN(6) // 0: the initiating record only, 1: the responding one only, else both
			for k, side := range []hinscorev1.Side{Initiating, Responding} {
				if seen == 1-k {
					continue
				}
				sst := st
				if side == Initiating && rng.IntN(8) == 0 {
					sst = hinscorev1.Status_STATUS_ERROR_TRANSIENT // the answer never reached the requester
				}
				evs = append(evs, Audit(side, base+"-"+side.String()[5:6], base, times[k], sst)...)
			}
		}
		kind, why := kinds[rng.IntN(len(kinds))], purposes[rng.IntN(len(purposes))]
		for _, e := range evs {
			e.RequestKind, e.Purpose = kind, why
			if why == "" {
				e.PurposeCode = ""
			}
			delay := int64(0)
			switch rng.IntN(50) {
			case 0, 1:
				delay = rng.Int64N(20 * S)
			case 2: // a syslog queue held it for minutes
				delay = 60*S + rng.Int64N(540*S)
			}
			arr = append(arr, arrival{e, e.EventTimeMs + delay})
			if rng.IntN(30) == 0 {
				arr = append(arr, arrival{proto.CloneOf(e), e.EventTimeMs + delay + rng.Int64N(5*S)})
			}
		}
	}
	slices.SortStableFunc(arr, func(a, b arrival) int { return int(a.at - b.at) })
	out := make([]*hinscorev1.ExchangeEvent, 0, len(arr)+1)
	for _, a := range arr {
		out = append(out, a.e)
	}
	return append(out, Tick(3600*S+24*3600*S))
}

// FinalOutcomes keeps the highest version of each outcome id.
func FinalOutcomes(outs []*hinscorev1.Outcome) map[string]*hinscorev1.Outcome {
	m := map[string]*hinscorev1.Outcome{}
	for _, o := range outs {
		if o.GetVersion() > m[o.GetOutcomeId()].GetVersion() {
			m[o.GetOutcomeId()] = o
		}
	}
	return m
}

// FinalClasses is the class of the highest version of each outcome id.
func FinalClasses(outs []*hinscorev1.Outcome) map[string]string {
	m := map[string]string{}
	last := map[string]uint64{}
	for _, o := range outs {
		if o.GetVersion() > last[o.GetOutcomeId()] {
			last[o.GetOutcomeId()] = o.GetVersion()
			m[o.GetOutcomeId()] = outcomeclass.Name(o.GetOutcomeClass())
		}
	}
	return m
}

// The tests read the join's outcomes as messages: these run the join on a
// batch of its own and decode what it appended, checking on the way that
// every encoding is the canonical one (Decode).

// Observe is j.Observe, its outcomes decoded and appended to out.
func Observe(j *join.Join, ev *hinscorev1.ExchangeEvent, now time.Time, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	var b join.Outcomes
	j.Observe(ev, now, &b)
	return append(out, Decode(&b)...)
}

// AdvanceIdle is j.AdvanceIdle, its outcomes decoded and appended to out.
func AdvanceIdle(j *join.Join, now, activeSince time.Time, out []*hinscorev1.Outcome) []*hinscorev1.Outcome {
	var b join.Outcomes
	j.AdvanceIdle(now, activeSince, &b)
	return append(out, Decode(&b)...)
}

// Decode unmarshals every outcome of the batch and checks that its bytes
// are exactly what proto.Marshal gives for the message they decode to, and
// that the entry's id, version, network and class are the message's.
func Decode(o *join.Outcomes) []*hinscorev1.Outcome {
	var outs []*hinscorev1.Outcome
	for i := range o.Len() {
		data := o.Data(i)
		m := &hinscorev1.Outcome{}
		if err := proto.Unmarshal(data, m); err != nil {
			panic(fmt.Sprintf("outcome %d does not decode: %v", i, err))
		}
		again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			panic(err)
		}
		if !bytes.Equal(again, data) {
			panic(fmt.Sprintf("outcome %d is not the canonical encoding:\n got %x\nwant %x", i, data, again))
		}
		w := o.Entry(i)
		if string(w.ID[:]) != m.GetOutcomeId() || w.Version != m.GetVersion() || w.Network != m.GetNetwork() || w.Class != m.GetOutcomeClass() {
			panic(fmt.Sprintf("outcome %d: entry %s v%d %s %v, message %s v%d %s %v", i,
				w.ID[:], w.Version, w.Network, w.Class, m.GetOutcomeId(), m.GetVersion(), m.GetNetwork(), m.GetOutcomeClass()))
		}
		outs = append(outs, m)
	}
	return outs
}

// Restored round-trips a join through a checkpoint.
func Restored(t testing.TB, j *join.Join, r join.Rules, pos join.Position) *join.Join {
	t.Helper()
	data := j.Snapshot(nil, pos)
	j2, got, err := join.Restore(r, data)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got != pos {
		t.Fatalf("restored position %+v, want %+v", got, pos)
	}
	if j2.Pending() != j.Pending() || j2.ChainCount() != j.ChainCount() || j2.Profiles() != j.Profiles() {
		t.Fatalf("restored %d pending %d chains %d profiles, want %d %d %d",
			j2.Pending(), j2.ChainCount(), j2.Profiles(), j.Pending(), j.ChainCount(), j.Profiles())
	}
	return j2
}

// Run feeds events, observed at T0, to a new join with rules r, checkpointed
// and restored before event cut (not at all when cut is out of range), and
// returns the outcomes it published as the tables print them.
func Run(t testing.TB, r join.Rules, events []*hinscorev1.ExchangeEvent, cut int) []string {
	t.Helper()
	j := join.New(r)
	var outs []*hinscorev1.Outcome
	for i, e := range events {
		if i == cut {
			j = Restored(t, j, r, join.Position{Partition: 1, EventsSeq: uint64(i)})
		}
		outs = Observe(j, e, T0, outs)
	}
	var got []string
	for _, o := range outs {
		got = append(got, Summarize(o).String())
	}
	return got
}
