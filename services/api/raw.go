package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/bus"
)

// RawMessage is one original message of a chain, as RAW holds it.
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
	// Status is "ok", "expired" (past RAW retention, or never stored) or
	// "mismatch" (the sequence holds another network's message: not shown).
	Status string `json:"status"`
	Data   string `json:"data,omitempty"`
}

// rawMessages reads each step's original bytes from RAW by sequence. A
// message is shown only when its subject is raw.<the chain's network>.*,
// so a wrong sequence can never reveal another network's message.
func rawMessages(ctx context.Context, js jetstream.JetStream, network string, steps []Step) ([]RawMessage, error) {
	stream, err := js.Stream(ctx, bus.StreamRaw)
	if err != nil {
		return nil, fmt.Errorf("api.rawMessages: %w", err)
	}
	out := make([]RawMessage, 0, len(steps))
	prefix := bus.RawSubject(network, "")
	for _, st := range steps {
		m := RawMessage{EventID: st.EventID, MessageID: st.MessageID, Role: st.Role, Subject: st.RawSubject, Seq: st.RawSeq, Format: st.Format, Status: "expired"}
		if st.RawSeq == 0 {
			out = append(out, m)
			continue
		}
		msg, err := stream.GetMsg(ctx, st.RawSeq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("api.rawMessages seq %d: %w", st.RawSeq, err)
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
