package fhirmap

import (
	"encoding/json"
	"strconv"
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// A subscription notification is the one FHIR feed that numbers what it
// sends: each event of a subscription has an event number, counted from
// the subscription's start (R4B/R5 SubscriptionStatus.notificationEvent
// .eventNumber and eventsSinceSubscriptionStart; the R4 backport's
// Parameters, notification-event.event-number and
// events-since-subscription-start). A Bundle's id, identifier, timestamp
// or meta.versionId count nothing. The numbers are recorded on the events
// of the notification's entries (sequence_source "fhir|<subscription>"),
// so that feed health sees a gap in them as it does in MSH-13.

// subscriptionStatus is what a notification's status entry says of its
// numbering, in either shape.
type subscriptionStatus struct {
	ResourceType string `json:"resourceType"`
	// R4B/R5 SubscriptionStatus.
	Subscription      *reference      `json:"subscription"`
	EventsSinceStart  json.RawMessage `json:"eventsSinceSubscriptionStart"`
	NotificationEvent []struct {
		EventNumber json.RawMessage `json:"eventNumber"`
		Focus       *reference      `json:"focus"`
	} `json:"notificationEvent"`
	// R4 backport: Parameters.
	Parameter []statusParameter `json:"parameter"`
}

type statusParameter struct {
	Name             string            `json:"name"`
	ValueString      string            `json:"valueString"`
	ValueInteger64   json.RawMessage   `json:"valueInteger64"`
	ValueUnsignedInt json.RawMessage   `json:"valueUnsignedInt"`
	ValueReference   *reference        `json:"valueReference"`
	Part             []statusParameter `json:"part"`
}

// number reads an integer64 (a JSON string in FHIR) or an unsignedInt.
func (p statusParameter) number() (int64, bool) {
	for _, raw := range []json.RawMessage{p.ValueInteger64, p.ValueUnsignedInt, json.RawMessage(strconv.Quote(p.ValueString))} {
		if n, ok := readNumber(raw); ok {
			return n, true
		}
	}
	return 0, false
}

func readNumber(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0 && s != ""
}

// numbering is a notification's event numbers: by focus reference, and
// the count since the start for a notification of one event.
type numbering struct {
	source   string
	byFocus  map[string]int64
	since    int64
	hasSince bool
}

// readNumbering reads the status entry of a notification, if it has one
// with a subscription; nil otherwise. A status that cannot be read gives
// no numbers and never fails the notification (it was skipped before).
func readNumbering(b *bundle) *numbering {
	for _, e := range b.Entry {
		var st subscriptionStatus
		if len(e.Resource) == 0 || json.Unmarshal(e.Resource, &st) != nil {
			continue
		}
		switch st.ResourceType {
		case "SubscriptionStatus":
			return st.r4b()
		case "Parameters":
			return st.backport()
		}
	}
	return nil
}

func (st *subscriptionStatus) r4b() *numbering {
	if st.Subscription == nil || st.Subscription.Reference == "" {
		return nil
	}
	n := &numbering{source: "fhir|" + st.Subscription.Reference, byFocus: map[string]int64{}}
	n.since, n.hasSince = readNumber(st.EventsSinceStart)
	for _, ev := range st.NotificationEvent {
		if num, ok := readNumber(ev.EventNumber); ok && ev.Focus != nil && ev.Focus.Reference != "" {
			n.byFocus[ev.Focus.Reference] = num
		}
	}
	return n
}

func (st *subscriptionStatus) backport() *numbering {
	n := &numbering{byFocus: map[string]int64{}}
	for _, p := range st.Parameter {
		switch p.Name {
		case "subscription":
			if p.ValueReference != nil {
				n.source = "fhir|" + p.ValueReference.Reference
			}
		case "events-since-subscription-start":
			n.since, n.hasSince = p.number()
		case "notification-event":
			num, focus, ok := int64(0), "", false
			for _, part := range p.Part {
				switch part.Name {
				case "event-number":
					num, ok = part.number()
				case "focus":
					if part.ValueReference != nil {
						focus = part.ValueReference.Reference
					}
				}
			}
			if ok && focus != "" {
				n.byFocus[focus] = num
			}
		}
	}
	if n.source == "fhir|" || n.source == "" {
		return nil
	}
	return n
}

// stamp records on the events of the entries their event numbers: an
// entry's number is the one whose focus names it (its fullUrl, or its
// type/id at the end of the reference); a notification of a single
// exchange entry and no per-event numbers takes the count since the start
// (the number of its one event). Only an entry's first event carries it:
// the others are no duplicates of it.
func (n *numbering) stamp(entries []numberedEntry) {
	if n == nil {
		return
	}
	for _, e := range entries {
		if num, ok := n.focusOf(e); ok {
			e.events[0].SequenceSource, e.events[0].SequenceNumber = n.source, num
		}
	}
	if len(n.byFocus) == 0 && n.hasSince && len(entries) == 1 {
		entries[0].events[0].SequenceSource, entries[0].events[0].SequenceNumber = n.source, n.since
	}
}

func (n *numbering) focusOf(e numberedEntry) (int64, bool) {
	for ref, num := range n.byFocus {
		if ref == e.fullURL || e.typeID != "" && (ref == e.typeID || strings.HasSuffix(ref, "/"+e.typeID)) {
			return num, true
		}
	}
	return 0, false
}

// numberedEntry is an entry of a notification that gave events.
type numberedEntry struct {
	fullURL, typeID string
	events          []*hinscorev1.ExchangeEvent
}
