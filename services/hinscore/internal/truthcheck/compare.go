package truthcheck

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/patient"
)

// Difference is one disagreement between the truth and the store: a field
// of a matched outcome, a request without an outcome (Field "outcome") or
// an outcome without a request (Field "request").
type Difference struct {
	Network, ID   string
	Field         string
	Stored, Truth string
	// Request and Outcome describe the two rows ("" for the one missing).
	Request, Outcome string
}

func (d Difference) String() string {
	return fmt.Sprintf("%s %s: %s %s, truth %s\n\ttruth:  %s\n\tstored: %s", d.Network, d.ID, d.Field, d.Stored, d.Truth,
		orNone(d.Request), orNone(d.Outcome))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// NoClass stands in the confusion matrix for a request without an outcome
// (stored side) or an outcome without a request (truth side).
const NoClass = "(none)"

// Report is the result of a comparison.
type Report struct {
	Requests, Outcomes int
	// Confusion counts, per network, truth class → stored class.
	Confusion   map[string]map[string]map[string]int
	Differences []Difference
}

// OK reports whether the store says exactly what the truth says.
func (r *Report) OK() bool { return len(r.Differences) == 0 }

// matchWindow is how far apart the truth's time of a cross-community
// transaction and its outcome's request time may be for the two to be
// matched: the gateways' records of one transaction are seconds apart,
// while one patient's transactions of one kind with one responder are
// journeys apart.
const matchWindow = 5 * time.Minute

// Compare matches every request of the truth with its stored outcome and
// compares them field by field. A request of truth.csv is matched by
// network and message id, or (a FHIR request, whose id is its resource's)
// by network, request time and patient token (responder without the key). A cross-community transaction, whose records carry no id
// of the simulator's, is matched by network, kind, responding community,
// patient token (when patientKey is given; an ITI-39 request names no
// patient) and the nearest request time. Every outcome left without a
// request is a difference too.
func Compare(t *Truth, stored []Outcome, patientKey []byte) *Report {
	rep := &Report{Requests: len(t.Requests), Outcomes: len(stored), Confusion: map[string]map[string]map[string]int{}}
	m := newMatcher(stored, patientKey)
	for _, q := range t.Requests {
		i := m.match(q)
		if i < 0 {
			rep.count(q.Network, q.Class, NoClass)
			rep.Differences = append(rep.Differences, Difference{Network: q.Network, ID: q.ID, Field: "outcome",
				Stored: "none", Truth: q.Class, Request: q.String()})
			continue
		}
		o := stored[i]
		rep.count(q.Network, q.Class, o.Class)
		for _, d := range differences(q, o) {
			d.Network, d.ID, d.Request, d.Outcome = q.Network, q.ID, q.String(), o.String()
			rep.Differences = append(rep.Differences, d)
		}
	}
	for i, o := range stored {
		if !m.used[i] {
			rep.count(o.Network, NoClass, o.Class)
			rep.Differences = append(rep.Differences, Difference{Network: o.Network, ID: o.RequestID, Field: "request",
				Stored: o.Class, Truth: "none", Outcome: o.String()})
		}
	}
	return rep
}

func (r *Report) count(network, truth, stored string) {
	if r.Confusion[network] == nil {
		r.Confusion[network] = map[string]map[string]int{}
	}
	if r.Confusion[network][truth] == nil {
		r.Confusion[network][truth] = map[string]int{}
	}
	r.Confusion[network][truth][stored]++
}

type matcher struct {
	stored []Outcome
	used   []bool
	key    []byte
	byID   map[[2]string][]int
	byKind map[[3]string][]int
	byTime map[timeKey][]int
}

type timeKey struct {
	network string
	at      int64
}

func newMatcher(stored []Outcome, key []byte) *matcher {
	m := &matcher{stored: stored, used: make([]bool, len(stored)), key: key,
		byID: map[[2]string][]int{}, byKind: map[[3]string][]int{}, byTime: map[timeKey][]int{}}
	for i, o := range stored {
		m.byID[[2]string{o.Network, o.RequestID}] = append(m.byID[[2]string{o.Network, o.RequestID}], i)
		k := [3]string{o.Network, o.Kind, o.ResponderCommunity}
		m.byKind[k] = append(m.byKind[k], i)
		t := timeKey{o.Network, o.RequestedAtMs}
		m.byTime[t] = append(m.byTime[t], i)
	}
	return m
}

// first is the first unused outcome of candidates that ok accepts, or -1.
func (m *matcher) first(candidates []int, ok func(Outcome) bool) int {
	for _, i := range candidates {
		if !m.used[i] && ok(m.stored[i]) {
			return i
		}
	}
	return -1
}

// match returns the index of q's outcome, marked used, or -1.
func (m *matcher) match(q Request) int {
	best := -1
	if q.Feed == FeedMLLP {
		best = m.first(m.byID[[2]string{q.Network, q.ID}], func(Outcome) bool { return true })
		if best < 0 {
			// A FHIR request's id is its resource's (a Task id, a Bundle
			// id), not the truth's control id: the same network, request
			// time and patient (or, without the key, responder) then.
			token, named := m.token(q)
			best = m.first(m.byTime[timeKey{q.Network, q.RequestedAt.UnixMilli()}], func(o Outcome) bool {
				return (named && o.PatientToken == token) || (!named && o.Responder == q.Responder)
			})
		}
	} else {
		token, named := m.token(q)
		for _, i := range m.byKind[[3]string{q.Network, q.Kind, q.ResponderCommunity}] {
			o := m.stored[i]
			if m.used[i] || (named && o.PatientToken != token && o.PatientToken != "") {
				continue
			}
			d := absDuration(time.UnixMilli(o.RequestedAtMs).Sub(q.RequestedAt))
			if d <= matchWindow && (best < 0 || d < absDuration(time.UnixMilli(m.stored[best].RequestedAtMs).Sub(q.RequestedAt))) {
				best = i
			}
		}
	}
	if best >= 0 {
		m.used[best] = true
	}
	return best
}

// token is the patient token of q's patient, when the key is known.
func (m *matcher) token(q Request) (string, bool) {
	if m.key == nil {
		return "", false
	}
	id, authority, ok := patient.SplitCX(q.Patient)
	if !ok {
		return "", false
	}
	return patient.Token(m.key, authority, id), true
}

// differences lists how a stored outcome differs from its truth row.
func differences(q Request, o Outcome) []Difference {
	var out []Difference
	diff := func(field string, got, want any) {
		if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
			out = append(out, Difference{Field: field, Stored: g, Truth: w})
		}
	}
	diff("class", o.Class, q.Class)
	diff("kind", o.Kind, q.Kind)
	diff("requester", strings.TrimSpace(o.Requester+" "+o.RequesterCommunity), strings.TrimSpace(q.Requester+" "+q.RequesterCommunity))
	diff("responder", strings.TrimSpace(o.Responder+" "+o.ResponderCommunity), strings.TrimSpace(q.Responder+" "+q.ResponderCommunity))
	diff("exception", o.ExceptionCode, q.ExceptionCode)
	if q.PurposeKnown {
		diff("purpose", o.Purpose+" "+o.PurposeCode, q.Purpose+" "+q.PurposeCode)
	}
	// An error code is compared where the feed carries it as a code (SOAP
	// copies; a QName by its local name); an audit has it in free text only.
	if code := q.ErrorCode[strings.LastIndex(q.ErrorCode, ":")+1:]; q.Feed == FeedSOAP && code != "" && code != "timeout" &&
		!slices.ContainsFunc(o.ReasonCodes, func(c string) bool { return strings.HasSuffix(c, "|"+code) }) {
		out = append(out, Difference{Field: "reason codes", Stored: fmt.Sprint(o.ReasonCodes), Truth: q.ErrorCode})
	}
	diff("sides", o.Sides, q.Sides)
	diff("untimed", o.Untimed == 1, q.Untimed)
	if q.Records >= 0 {
		diff("records", o.Records, q.Records)
	}
	if q.TTAMs != -2 {
		diff("tta", ms(o.TTAMs), duration(q.TTAMs))
	}
	diff("ttf", ms(o.TTFMs), duration(q.TTFMs))
	at := time.UnixMilli(o.RequestedAtMs)
	if d := at.Sub(q.RequestedAt); d < 0 || d > q.Skew {
		out = append(out, Difference{Field: "requested at", Stored: at.UTC().Format(timeLayout), Truth: q.RequestedAt.UTC().Format(timeLayout)})
	}
	return out
}

// duration is a truth duration as ms prints a stored one.
func duration(v int64) string {
	if v < 0 {
		return "NULL"
	}
	return fmt.Sprint(v)
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
