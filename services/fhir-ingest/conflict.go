package fhiringest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// ErrConflict is returned by store for a resource whose identity (type, id
// and version) JetStream already holds with other content: a version of a
// resource is immutable, so a second content under it is refused (409 and
// a dead letter), never taken as a re-send.
var ErrConflict = errors.New("fhiringest: conflict: this version was received before with other content")

// How a re-send is told from a conflict. The Msg-Ids of a resource (its
// events', and its RAW message's) derive from its identity, so JetStream
// answers a second publish of the same identity within the stream's
// duplicate window with "duplicate" and the sequence of the message it
// already holds. Only then is that message read back (one request to the
// stream, on the duplicate path only) and its content compared with the
// body received: the same content is a duplicate (200 as before), other
// content a conflict. The duplicate window and the stored message are the
// stream's, so every replica of the ingest, before and after a restart,
// decides alike; past the window a publish is not recognised as a
// duplicate at all (bus.StreamOptions.DuplicateWindow, 2 minutes).

// sameStored reports whether the message stream holds at seq carries body:
// in EVENTS the bytes sealed in the event (eventID), in RAW the message's
// data.
func (p *publisher) sameStored(ctx context.Context, stream string, seq uint64, eventID string, body []byte) (bool, error) {
	st, err := p.js.Stream(ctx, stream)
	if err != nil {
		return false, fmt.Errorf("fhiringest.sameStored %s: %w", stream, err)
	}
	msg, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Gone since the PubAck (limits, purge): nothing to differ from.
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("fhiringest.sameStored %s %d: %w", stream, seq, err)
	}
	stored := msg.Data
	if stream == bus.StreamEvents {
		var ev hinscorev1.ExchangeEvent
		if err := proto.Unmarshal(msg.Data, &ev); err != nil {
			return false, fmt.Errorf("fhiringest.sameStored %s %d: %w", stream, seq, err)
		}
		if ev.EventId != eventID || len(ev.RawSealed) == 0 {
			// Another event under this Msg-Id, or one stored without its
			// bytes: the identity was stored with another shape.
			return false, nil
		}
		if stored, err = p.keys.Open(ev.EventId, ev.RawSealed); err != nil {
			return false, fmt.Errorf("fhiringest.sameStored %s %d: %w", stream, seq, err)
		}
	}
	return sameContent(stored, body), nil
}

// sameContent reports whether two bodies are one content: the same bytes
// (white space around them aside), or the same JSON value (white space
// between tokens and the order of an object's members aside, numbers
// compared as written).
func sameContent(a, b []byte) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if bytes.Equal(a, b) {
		return true
	}
	va, oka := decodeValue(a)
	vb, okb := decodeValue(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

func decodeValue(b []byte) (any, bool) {
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	return v, true
}
