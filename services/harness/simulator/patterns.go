package simulator

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request patterns: how a request and its answers travel. Each is one
// row of DOMAIN.md's HL7 v2 or FHIR table; the truth names it in its
// pattern column.
const (
	PatternQBP    = "qbp-q22" // QBP^Q22 → RSP^K22 (partial: QAK-2 TM)
	PatternQ23    = "qbp-q23" // QBP^Q23 (PIX) → RSP^K23
	PatternDSC    = "qbp-dsc" // QBP^Q22 → RSP^K22 with DSC, then the continuation QBP → RSP
	PatternQRYA19 = "qry-a19" // QRY^A19 → ADR^A19
	PatternQRYT12 = "qry-t12" // QRY^T12 → DOC^T12
	PatternREF    = "ref-i12" // REF^I12 → commit ACK CA → RRI^I12
	PatternORM    = "orm-o01" // ORM^O01 → ORR^O02 accept → ORU^R01 result; ORM ORC-1 CA cancels
	PatternOML    = "oml-o21" // OML^O21 → ORL^O22 accept → ORU^R01 result; OML ORC-1 CA cancels
	PatternTask   = "fhir-task"
	// PatternSubscription is a Task whose later versions reach hinscore
	// inside subscription notifications (history Bundles).
	PatternSubscription = "fhir-subscription"
	PatternMessage      = "fhir-message"
	PatternBatch        = "fhir-batch"
	PatternTxn          = "fhir-transaction"
	PatternAudit        = "fhir-audit"
)

// Request kinds of the HL7 v2 and FHIR patterns (KindDocumentQuery is the
// cross-community one's name too).
const (
	KindPatientQuery  = "patient_query"
	KindReferral      = "referral"
	KindOrder         = "order"
	KindRecordRequest = "record_request"
)

// Cancelled is the class of a request withdrawn by its requester before
// its deadline.
const Cancelled = "cancelled"

// Message formats of a network's feed.
const (
	FormatHL7v2 = "hl7v2" // over MLLP
	FormatFHIR  = "fhir"  // FHIR R4 JSON, POSTed over HTTP
)

// PatternWeight is a pattern's share of a network's requests.
type PatternWeight struct {
	Pattern string  `json:"pattern"`
	Weight  float64 `json:"weight"`
}

// patternSpec is what a pattern is: its format, the request kinds it
// carries (one drawn per request) and the classes its messages can say.
type patternSpec struct {
	name    string
	format  string
	kinds   []string
	classes []string
	// interim: an interim answer (commit ACK, order accepted, Task
	// received) comes before the final one.
	interim bool
	// entries: one exchange carries several requests (a batch's entries).
	entries bool
}

// Sets of classes the patterns can express.
var (
	allAnswered = []string{Fulfilled, FulfilledLate, NotFound, RefusedException, RefusedUnjustified, Redirected, ErrorTransient, ErrorPermanent}
	classesQBP  = append(slices.Clone(allAnswered), Unanswered, Partial)
	classesQRY  = append(slices.Clone(allAnswered), Unanswered)
	classesREF  = []string{Fulfilled, FulfilledLate, RefusedException, RefusedUnjustified, Redirected, ErrorTransient, ErrorPermanent, Unanswered}
	classesOrd  = append(slices.Clone(classesREF), Cancelled)
	classesTask = append(slices.Clone(allAnswered), Unanswered, Cancelled)
	classesMsg  = append(slices.Clone(allAnswered), Unanswered)
	classesHTTP = append(slices.Clone(allAnswered), Unanswered)
	classesTxn  = []string{Fulfilled, FulfilledLate, RefusedException, RefusedUnjustified, Redirected, ErrorTransient, ErrorPermanent, Unanswered}
	classesAud  = []string{Fulfilled, FulfilledLate, ErrorTransient, ErrorPermanent, RefusedException}
)

var patternSpecs = [...]patternSpec{
	{name: PatternQBP, format: FormatHL7v2, kinds: []string{KindPatientQuery}, classes: classesQBP},
	{name: PatternQ23, format: FormatHL7v2, kinds: []string{KindPatientQuery}, classes: classesQBP},
	{name: PatternDSC, format: FormatHL7v2, kinds: []string{KindPatientQuery}, classes: classesQBP},
	{name: PatternQRYA19, format: FormatHL7v2, kinds: []string{KindPatientQuery}, classes: classesQRY},
	{name: PatternQRYT12, format: FormatHL7v2, kinds: []string{KindDocumentQuery}, classes: classesQRY},
	{name: PatternREF, format: FormatHL7v2, kinds: []string{KindReferral}, classes: classesREF, interim: true},
	{name: PatternORM, format: FormatHL7v2, kinds: []string{KindOrder}, classes: classesOrd, interim: true},
	{name: PatternOML, format: FormatHL7v2, kinds: []string{KindOrder}, classes: classesOrd, interim: true},
	{name: PatternTask, format: FormatFHIR, kinds: []string{KindRecordRequest}, classes: classesTask, interim: true},
	{name: PatternSubscription, format: FormatFHIR, kinds: []string{KindRecordRequest}, classes: classesTask, interim: true},
	{name: PatternMessage, format: FormatFHIR, kinds: []string{KindPatientQuery, KindReferral}, classes: classesMsg},
	{name: PatternBatch, format: FormatFHIR, kinds: []string{KindPatientQuery, KindDocumentQuery}, classes: classesHTTP, entries: true},
	{name: PatternTxn, format: FormatFHIR, kinds: []string{KindRecordRequest, KindOrder}, classes: classesTxn, entries: true},
	{name: PatternAudit, format: FormatFHIR, kinds: []string{KindPatientQuery, KindDocumentQuery}, classes: classesAud},
}

func lookupPattern(name string) (patternSpec, bool) {
	for _, p := range patternSpecs {
		if p.name == name {
			return p, true
		}
	}
	return patternSpec{}, false
}

// Patterns lists every pattern the simulator speaks.
func Patterns() []string {
	out := make([]string, len(patternSpecs))
	for i, p := range patternSpecs {
		out[i] = p.name
	}
	return out
}

// PatternFormat is the format of a pattern's messages ("" when unknown).
func PatternFormat(name string) string {
	p, _ := lookupPattern(name)
	return p.format
}

// Policy SLAs of the request kinds (DOMAIN.md defaults), kept here on
// their own: the truth does not read the linker's configuration.
func kindSLA(kind string) time.Duration {
	switch kind {
	case KindDocumentQuery:
		return 5 * time.Minute
	case KindReferral, KindOrder:
		return 72 * time.Hour
	case KindRecordRequest:
		return 24 * time.Hour
	}
	return QuerySLA
}

// KindSLA returns the SLA the truth assumes for a request kind.
func KindSLA(kind string) time.Duration { return kindSLA(kind) }

// kindScale stretches a responder's query latency to a kind's pace: a
// referral or an order is answered in hours, a record request in tens of
// minutes, a query in seconds.
func kindScale(kind string) float64 {
	switch kind {
	case KindReferral, KindOrder:
		return 900
	case KindRecordRequest:
		return 200
	case KindDocumentQuery:
		return 2
	}
	return 1
}

// restrictMix keeps the weights of the classes a pattern can say; when
// none is left the request is fulfilled.
func restrictMix(mix []ClassWeight, classes []string) []ClassWeight {
	var out []ClassWeight
	for _, w := range mix {
		if slices.Contains(classes, w.Class) && w.Weight > 0 {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return []ClassWeight{{Fulfilled, 1}}
	}
	return out
}

// lateMsFor draws the latency of a late answer to a request of SLA sla:
// beyondShare of them after SLA + grace + the linker's lateness (reported
// unanswered first), the rest between the SLA and that; 1.5 s clear of
// every boundary the linker applies.
func (g *generator) lateMsFor(sla time.Duration, beyondShare float64) int64 {
	const margin = 1500
	slaMs := float64(sla.Milliseconds())
	bounds := [...]float64{slaMs, slaMs + float64(QueryGrace.Milliseconds()),
		slaMs + float64((QueryGrace + LinkerLateness).Milliseconds()), 3 * slaMs}
	for {
		var v float64
		if g.rng.Float64() < beyondShare {
			lo := bounds[2]
			v = lo + float64(g.lognormalMs(LogNormal{MedianMs: 1.5 * slaMs, Sigma: 0.7}, margin, 15*slaMs))
		} else {
			v = bounds[0] + g.rng.Float64()*(bounds[2]-bounds[0])
		}
		ok := true
		for _, b := range bounds {
			if math.Abs(v-b) < margin {
				ok = false
			}
		}
		if ok {
			return int64(v)
		}
	}
}

// Span is a span of history: calendar months, or a fixed duration.
type Span struct {
	Months   int
	Duration time.Duration
}

// From is the span's length from start on.
func (s Span) From(start time.Time) time.Duration {
	if s.Months > 0 {
		return start.AddDate(0, s.Months, 0).Sub(start)
	}
	return s.Duration
}

// Before is the start of the span that ends at end.
func (s Span) Before(end time.Time) time.Time {
	if s.Months > 0 {
		return end.AddDate(0, -s.Months, 0)
	}
	return end.Add(-s.Duration)
}

// ParseSpan reads a span of history: a Go duration ("36h"), days ("30d")
// or calendar months ("6mo").
func ParseSpan(s string) (Span, error) {
	s = strings.TrimSpace(s)
	count := func(suffix string) (int, bool) {
		n, err := strconv.Atoi(strings.TrimSuffix(s, suffix))
		return n, err == nil && strings.HasSuffix(s, suffix) && n > 0
	}
	if n, ok := count("mo"); ok {
		return Span{Months: n}, nil
	}
	if n, ok := count("d"); ok {
		return Span{Duration: time.Duration(n) * 24 * time.Hour}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return Span{}, fmt.Errorf("simulator.ParseSpan: %q is not a positive duration, days (30d) or months (6mo)", s)
	}
	return Span{Duration: d}, nil
}

// validatePatterns checks a network's format and patterns: known
// patterns of the network's format, positive weights; a FHIR network
// needs patterns (it has no default one).
func validatePatterns(where string, n NetworkProfile) []error {
	var errs []error
	format := FormatHL7v2
	switch n.Format {
	case "", FormatHL7v2:
	case FormatFHIR:
		format = FormatFHIR
		if len(n.Patterns) == 0 {
			errs = append(errs, fmt.Errorf("%s.Patterns: a FHIR network needs patterns", where))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.Format: %q, want %q or %q", where, n.Format, FormatHL7v2, FormatFHIR))
	}
	for i, pw := range n.Patterns {
		spec, ok := lookupPattern(pw.Pattern)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s.Patterns[%d]: unknown pattern %q, want one of %v", where, i, pw.Pattern, Patterns()))
		case spec.format != format:
			errs = append(errs, fmt.Errorf("%s.Patterns[%d]: %q is %s, the network's feed is %s", where, i, pw.Pattern, spec.format, format))
		}
		if pw.Weight <= 0 {
			errs = append(errs, fmt.Errorf("%s.Patterns[%d].Weight: %g is not positive", where, i, pw.Weight))
		}
	}
	return errs
}
