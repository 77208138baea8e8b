package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// RawMessage is one original message of a chain, as RAW or EVENTS holds it.
type RawMessage struct {
	EventID   string `json:"event_id"`
	MessageID string `json:"message_id"`
	Role      string `json:"role"`
	Subject   string `json:"subject"`
	Seq       uint64 `json:"seq"`
	Format    string `json:"format"`
	// Lines is the NDJSON line range (header Hin-Lines) when the RAW
	// message is a chunk of a FHIR NDJSON feed that holds this event.
	Lines string `json:"lines,omitempty"`
	// Status is "ok", "expired" (past retention, or never stored),
	// "mismatch" (the sequence holds another network's or another event's
	// message, or sealed bytes that do not open for this event: not shown)
	// or "key_unknown" (sealed with a key this api is not given: add it to
	// HINSCORE_RAW_KEYS).
	Status string `json:"status"`
	Data   string `json:"data,omitempty"`
}

// rawMessages reads each step's original bytes by sequence: from RAW where
// they were stored apart (FHIR), from the step's own EVENTS message where
// they travel with the event (HL7 v2, see bus.LocateRaw). A message is
// shown only when its subject is the chain's network's (raw.<network>.* or
// events.*.<network>) and, in EVENTS, it is the step's own event, so a
// wrong sequence can never reveal another network's message. Bytes in
// EVENTS are sealed (seal.RawKeys, keys); those of events stored before
// sealing are read as they are.
func rawMessages(ctx context.Context, js jetstream.JetStream, keys *seal.RawKeys, network string, steps []Step) ([]RawMessage, error) {
	streams := map[string]jetstream.Stream{}
	open := func(name string) (jetstream.Stream, error) {
		if st, ok := streams[name]; ok {
			return st, nil
		}
		st, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("api.rawMessages: %w", err)
		}
		streams[name] = st
		return st, nil
	}
	out := make([]RawMessage, 0, len(steps))
	prefix := bus.RawSubject(network, "")
	for _, st := range steps {
		m := RawMessage{EventID: st.EventID, MessageID: st.MessageID, Role: st.Role, Subject: st.RawSubject, Seq: st.RawSeq, Format: st.Format, Status: "expired"}
		if st.RawSeq == 0 {
			out = append(out, m)
			continue
		}
		inEvents := bus.RawInEvents(st.RawSubject)
		name := bus.StreamRaw
		if inEvents {
			name = bus.StreamEvents
		}
		stream, err := open(name)
		if err != nil {
			return nil, err
		}
		msg, err := stream.GetMsg(ctx, st.RawSeq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("api.rawMessages %s seq %d: %w", name, st.RawSeq, err)
		case inEvents:
			m.Status = "mismatch"
			if msg.Subject != st.RawSubject || bus.NetworkOfSubject(msg.Subject) != network {
				break
			}
			var ev hinscorev1.ExchangeEvent
			if proto.Unmarshal(msg.Data, &ev) != nil || ev.GetEventId() != st.EventID {
				break
			}
			if sealed := ev.GetRawSealed(); len(sealed) > 0 {
				plain, err := keys.Open(st.EventID, sealed)
				if errors.Is(err, seal.ErrRawKeyUnknown) {
					m.Status = "key_unknown"
				}
				if err == nil {
					m.Status, m.Data = "ok", string(plain)
				}
				break
			}
			if len(ev.GetRaw()) > 0 {
				m.Status, m.Data = "ok", string(ev.GetRaw())
			}
		case !strings.HasPrefix(msg.Subject, prefix) || (st.RawSubject != "" && msg.Subject != st.RawSubject):
			m.Status = "mismatch"
		default:
			m.Status, m.Subject, m.Data = "ok", msg.Subject, string(msg.Data)
			m.Lines = msg.Header.Get("Hin-Lines")
			if m.Format == "" {
				m.Format = msg.Header.Get(bus.HeaderFormat)
			}
		}
		out = append(out, m)
	}
	return out, nil
}
