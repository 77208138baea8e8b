package toevent

import (
	"fmt"
	"os"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
)

// InspectFile reads a file of HL7 messages (see hl7v2.SplitMessages) and
// maps each one. The error names the file, the message number (1-based)
// and, through the wrapped *hl7v2.ParseError, the segment and field.
func (mp Mapper) InspectFile(path, network string, ingest time.Time) ([]*hinscorev1.ExchangeEvent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	return mp.Inspect(path, network, data, ingest)
}

// Inspect is InspectFile on bytes already read; name is used in errors.
func (mp Mapper) Inspect(name, network string, data []byte, ingest time.Time) ([]*hinscorev1.ExchangeEvent, error) {
	f, err := hl7v2.SplitBatches(data)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	msgs := f.Messages()
	if len(msgs) == 0 && !f.IsBatch() {
		// A batch of no messages is valid HL7 v2; a file of nothing is not.
		return nil, fmt.Errorf("inspect %s: no HL7 message found", name)
	}
	events := make([]*hinscorev1.ExchangeEvent, 0, len(msgs))
	for i, raw := range msgs {
		_, ev, err := mp.MapBytes(network, raw, ingest)
		if err != nil {
			return nil, fmt.Errorf("inspect %s: message %d: %w", name, i+1, err)
		}
		events = append(events, ev)
	}
	return events, nil
}
