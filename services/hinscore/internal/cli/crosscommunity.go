package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	atnatoevent "github.com/hinscore/hinscore/services/lib/atna/toevent"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	soaptoevent "github.com/hinscore/hinscore/services/lib/soap/toevent"
	"github.com/hinscore/hinscore/services/lib/syslog"
)

// inspector maps one file's bytes to the events an ingest would publish.
type inspector func(name, network string, data []byte, ingest time.Time) ([]*hinscorev1.ExchangeEvent, error)

// maxRecordBytes bounds one SOAP copy or audit record read from a file, as
// the listeners' defaults do.
const maxRecordBytes = 8 << 20

// parseSide reads --side.
func parseSide(s string) (hinscorev1.Side, error) {
	switch strings.ToLower(s) {
	case "initiating":
		return hinscorev1.Side_SIDE_INITIATING, nil
	case "responding":
		return hinscorev1.Side_SIDE_RESPONDING, nil
	}
	return 0, fmt.Errorf("%w: --side %q: want initiating or responding", errUsage, s)
}

// soapInspector maps a file holding one SOAP copy (an envelope, or an MTOM
// package with or without its Content-Type header block) seen at side.
func soapInspector(m soaptoevent.Mapper, side hinscorev1.Side) inspector {
	return func(name, network string, data []byte, ingest time.Time) ([]*hinscorev1.ExchangeEvent, error) {
		_, ev, err := m.Map(soaptoevent.Input{Network: network, Side: side, Body: data, Ingest: ingest, MaxBytes: maxRecordBytes})
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", name, err)
		}
		return []*hinscorev1.ExchangeEvent{ev}, nil
	}
}

// atnaInspector maps every audit record of a file (lib/atna/toevent, as
// the audit-record listener does: the ids derive from each AuditMessage's
// bytes).
func atnaInspector(key []byte, keyID string) inspector {
	patients, table := patient.NewTokenizer(key), atnatoevent.DefaultTable()
	return func(name, network string, data []byte, ingest time.Time) ([]*hinscorev1.ExchangeEvent, error) {
		records, bare, err := auditCapture(data)
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", name, err)
		}
		var out []*hinscorev1.ExchangeEvent
		for i, raw := range records {
			body := raw
			if !bare {
				msg, err := syslog.Parse(raw, ingest)
				if err != nil {
					return out, fmt.Errorf("inspect %s: record %d: %w", name, i+1, err)
				}
				body = msg.Body
			}
			_, evs, err := atnatoevent.MapBytes(atnatoevent.Input{Network: network, Raw: body, Ingest: ingest,
				Patients: patients, PatientKeyID: keyID, Table: table}, maxRecordBytes)
			if err != nil {
				return out, fmt.Errorf("inspect %s: record %d: %w", name, i+1, err)
			}
			out = append(out, evs...)
		}
		return out, nil
	}
}

// auditCapture splits a capture into its records: a bare AuditMessage XML
// (bare is set), RFC 5425 octet-counted syslog frames ("123 <85>1 ..."),
// or syslog messages one after another, each from a line starting with
// its PRI (RFC 5424 or BSD); the records are the syslog messages.
func auditCapture(data []byte) (records [][]byte, bare bool, err error) {
	t := bytes.TrimLeft(data, " \t\r\n\xef\xbb\xbf")
	switch {
	case len(t) == 0:
		return nil, false, errors.New("empty")
	case t[0] == '<' && (len(t) < 2 || t[1] < '0' || t[1] > '9'):
		return [][]byte{bytes.TrimSpace(data)}, true, nil
	case t[0] >= '1' && t[0] <= '9':
		records, err = framedRecords(t)
		return records, false, err
	case t[0] == '<':
		return lineRecords(t), false, nil
	}
	return nil, false, errors.New("neither an AuditMessage nor a syslog capture (octet-counted frames, or messages each from a line starting with <PRI>)")
}

func framedRecords(data []byte) ([][]byte, error) {
	r := syslog.NewReader(bytes.NewReader(data), maxRecordBytes)
	var out [][]byte
	for i := 1; ; i++ {
		frame, err := r.ReadFrame()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		out = append(out, bytes.Clone(frame))
	}
}

// lineRecords splits syslog messages one after another, each starting on
// a line that starts with its PRI ("<85>"): the lines after it that do
// not (a pretty-printed AuditMessage's) belong to it. No XML line starts
// with '<' and a digit, so the messages are found without octet counts.
func lineRecords(data []byte) [][]byte {
	var starts []int
	for i := 0; i < len(data); {
		if data[i] == '<' && i+1 < len(data) && data[i+1] >= '0' && data[i+1] <= '9' {
			starts = append(starts, i)
		}
		nl := bytes.IndexByte(data[i:], '\n')
		if nl < 0 {
			break
		}
		i += nl + 1
	}
	out := make([][]byte, 0, len(starts))
	for k, start := range starts {
		end := len(data)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		out = append(out, bytes.TrimRight(data[start:end], "\r\n"))
	}
	return out
}

// crossCommunityFormat is what --format auto takes a file for beyond
// HL7 v2 and FHIR: "atna" for an AuditMessage or a syslog capture (a
// first byte '<' and a digit, or a digit), "soap" for other XML or a MIME
// package, "" for anything else.
func crossCommunityFormat(data []byte) string {
	t := bytes.TrimLeft(data, " \t\r\n\xef\xbb\xbf")
	switch {
	case len(t) == 0:
		return ""
	case t[0] >= '1' && t[0] <= '9', len(t) > 1 && t[0] == '<' && t[1] >= '0' && t[1] <= '9':
		return "atna"
	case bytes.HasPrefix(t, []byte("--")) || len(t) >= 13 && strings.EqualFold(string(t[:13]), "content-type:"):
		return "soap"
	case t[0] == '<':
		if bytes.Contains(t[:min(len(t), 4096)], []byte("AuditMessage")) {
			return "atna"
		}
		return "soap"
	}
	return ""
}
