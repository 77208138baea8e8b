package fhirmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// MaxInspectLine bounds an NDJSON line read by Inspect.
const MaxInspectLine = 8 << 20

// Inspect maps a file's content: a Bundle, one resource, or NDJSON. name
// is used in errors, which name the line for NDJSON and the element always.
func (m Mapper) Inspect(name, network string, data []byte, ingest time.Time) ([]*hinscorev1.ExchangeEvent, error) {
	if m.Table == nil {
		m.Table = DefaultTable()
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("inspect %s: empty", name)
	}
	if json.Valid(trimmed) {
		res, err := m.Map(Input{Network: network, Body: trimmed, Ingest: ingest})
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", name, err)
		}
		return res.Events, nil
	}
	var events []*hinscorev1.ExchangeEvent
	lr := NewLineReader(bytes.NewReader(data), MaxInspectLine)
	for {
		line, raw, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", name, err)
		}
		res, err := m.Map(Input{Network: network, Body: raw, Ingest: ingest})
		if err != nil {
			return nil, fmt.Errorf("inspect %s: line %d: %w", name, line, err)
		}
		events = append(events, res.Events...)
	}
	return events, nil
}
