package join

import (
	"math"
	"slices"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// profile holds the low-cardinality fields of an event (message type,
// request kind, organisations, mapping version, exception code, and the
// number of its cross-community fields). Profiles are interned per
// partition and a step stores only the profile's number.
type profile struct {
	messageType    string
	requestKind    string
	requesterOrg   string
	responderOrg   string
	mappingVersion string
	exceptionCode  string
	// xc is the number of the event's crossFields in the join's second
	// table plus one, 0 when it has none: the events of formats without
	// them (HL7 v2, FHIR) are interned as cheaply as before they existed.
	xc uint32
}

// crossFields are the fields of a cross-community transaction's event:
// purpose, home communities, which gateway recorded it, untimed. (The
// purpose comes with other formats too; it is kept here all the same,
// where only events that carry one pay for it.)
type crossFields struct {
	purpose            string
	purposeCode        string
	requesterCommunity string
	responderCommunity string
	side               hinscorev1.Side
	untimed            bool
}

func profileOf(ev *hinscorev1.ExchangeEvent) profile {
	return profile{
		messageType:    ev.GetMessageType(),
		requestKind:    ev.GetRequestKind(),
		requesterOrg:   ev.GetRequesterOrg(),
		responderOrg:   ev.GetResponderOrg(),
		mappingVersion: ev.GetMappingVersion(),
		exceptionCode:  ev.GetExceptionCode(),
	}
}

func crossFieldsOf(ev *hinscorev1.ExchangeEvent) crossFields {
	return crossFields{
		purpose:            ev.GetPurpose(),
		purposeCode:        ev.GetPurposeCode(),
		requesterCommunity: ev.GetRequesterCommunity(),
		responderCommunity: ev.GetResponderCommunity(),
		side:               ev.GetSide(),
		untimed:            ev.GetUntimed(),
	}
}

// refProfile interns an event's profile, and its cross-community fields,
// for one more step that uses them.
func (j *Join) refProfile(ev *hinscorev1.ExchangeEvent) uint32 {
	p := profileOf(ev)
	if x := crossFieldsOf(ev); x != (crossFields{}) {
		p.xc = j.crosses.ref(x) + 1
	}
	return j.profiles.ref(p)
}

// unrefProfile lets go of a step's profile and its cross-community fields.
func (j *Join) unrefProfile(id uint32) {
	if xc := j.profiles.get(id).xc; xc != 0 {
		j.crosses.unref(xc - 1)
	}
	j.profiles.unref(id)
}

// cross returns the cross-community fields of profile p (zero when it has
// none), to read before the next event is interned.
func (j *Join) cross(p *profile) *crossFields {
	if p.xc == 0 {
		return &j.noCross
	}
	return j.crosses.get(p.xc - 1)
}

// stepCross is cross of a step's profile.
func (j *Join) stepCross(s *step) *crossFields { return j.cross(j.profiles.get(s.profile)) }

// appendProfile encodes a profile and its cross-community fields x
// (checkpoint version 2): ten strings in field order (message type,
// request kind, requester, responder, mapping version, exception code,
// purpose, purpose code, requester community, responder community), then
// uvarint(side), then a byte untimed.
func appendProfile(b []byte, p *profile, x *crossFields) []byte {
	for _, s := range [...]string{p.messageType, p.requestKind, p.requesterOrg, p.responderOrg, p.mappingVersion, p.exceptionCode,
		x.purpose, x.purposeCode, x.requesterCommunity, x.responderCommunity} {
		b = appendStr(b, s)
	}
	b = appendUvarint(b, uint64(x.side))
	var untimed byte
	if x.untimed {
		untimed = 1
	}
	return append(b, untimed)
}

// readProfile decodes a profile written by appendProfile, or by version 1
// of the checkpoint (its first six strings only).
func readProfile(c *cursor, version uint64) (profile, crossFields) {
	p := profile{messageType: c.str(), requestKind: c.str(), requesterOrg: c.str(), responderOrg: c.str(),
		mappingVersion: c.str(), exceptionCode: c.str()}
	var x crossFields
	if version < 2 {
		return p, x
	}
	x.purpose, x.purposeCode, x.requesterCommunity, x.responderCommunity = c.str(), c.str(), c.str(), c.str()
	side := c.uvarint()
	if _, ok := hinscorev1.Side_name[int32(side)]; !ok || side > math.MaxInt32 {
		c.fail("profile side %d", side)
	}
	x.side = hinscorev1.Side(side)
	switch c.byte1() {
	case 0:
	case 1:
		x.untimed = true
	default:
		c.fail("profile untimed flag")
	}
	return p, x
}

// internTable interns values with reference counts, so that it holds only
// what live chains use and never grows without bound.
type internTable[T comparable] struct {
	ids   map[T]uint32
	items []internEntry[T]
	free  []uint32
}

type internEntry[T comparable] struct {
	v    T
	refs uint32
}

func newInternTable[T comparable]() internTable[T] { return internTable[T]{ids: map[T]uint32{}} }

// ref interns v for one more user and returns its number.
func (t *internTable[T]) ref(v T) uint32 {
	id := t.add(v)
	t.items[id].refs++
	return id
}

// add interns v without counting a user (a restore counts them after).
func (t *internTable[T]) add(v T) uint32 {
	if id, ok := t.ids[v]; ok {
		return id
	}
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
		t.items[id] = internEntry[T]{v: v}
	} else {
		id = uint32(len(t.items))
		t.items = append(t.items, internEntry[T]{v: v})
	}
	t.ids[v] = id
	return id
}

func (t *internTable[T]) unref(id uint32) {
	e := &t.items[id]
	e.refs--
	if e.refs == 0 {
		delete(t.ids, e.v)
		var zero T
		e.v = zero
		t.free = append(t.free, id)
	}
}

func (t *internTable[T]) get(id uint32) *T { return &t.items[id].v }

// live counts the values in use.
func (t *internTable[T]) live() int { return len(t.ids) }

// rebuild derives the index and free list from items whose refs were
// counted from the chains.
func (t *internTable[T]) rebuild() {
	t.ids = make(map[T]uint32, len(t.items))
	t.free = t.free[:0]
	for i := range t.items {
		e := &t.items[i]
		if e.refs == 0 {
			var zero T
			e.v = zero
			t.free = append(t.free, uint32(i))
			continue
		}
		t.ids[e.v] = uint32(i)
	}
	slices.Reverse(t.free)
}
