package fhirmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// FuzzMap: no input makes the decoders or the mapping panic; whatever is
// refused is refused with an *Error naming a sentinel, and whatever is
// accepted maps to well-formed events.
func FuzzMap(f *testing.F) {
	for _, name := range []string{"task-requested.json", "message-request.json", "batch-response.json", "auditevent-rest.json", "auditevent-xcpd-responding.json", "auditevent-xca-retrieve-import.json", "subscription-notification.json", "task-requested-purpose.json", "transaction-purpose.json", "transaction-response-odd-status.json", "task-bad-time.json"} {
		f.Add(readExample(f, name), "corr")
	}
	m := testMapper()
	f.Fuzz(func(t *testing.T, body []byte, corr string) {
		if typ := peekType(body); typ != "" {
			var h head
			if json.Unmarshal(body, &h) == nil && h.ResourceType != typ {
				t.Fatalf("peekType %q, the decoder reads %q", typ, h.ResourceType)
			}
		}
		res, err := m.Map(Input{Network: "neta", Body: body, CorrelationID: corr, Ingest: testIngest})
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || !(errors.Is(err, ErrSyntax) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotExchange)) {
				t.Fatalf("error %v is not a *Error with a sentinel", err)
			}
			return
		}
		if res.Identity == "" {
			t.Fatal("accepted without an identity")
		}
		for _, ev := range res.Events {
			if ev.EventId == "" || ev.Network != "neta" || ev.Role == 0 {
				t.Fatalf("malformed event %v", ev)
			}
			if _, err := purpose.Parse(ev.Purpose); (ev.Purpose != "" && err != nil) || (ev.Purpose == "") != (ev.PurposeCode == "") {
				t.Fatalf("purpose %q, code %q", ev.Purpose, ev.PurposeCode)
			}
		}
	})
}

// FuzzLineReader: the reader returns every non-blank line, numbered, and
// never more bytes than the limit.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n\n{\"b\":2}\r\n"), 16)
	f.Add([]byte("x"), 1)
	f.Add(bytes.Repeat([]byte("y"), 70000), 100)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 1 || max > 1<<20 {
			return
		}
		lr := NewLineReader(bytes.NewReader(data), max)
		prev := 0
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatal("more lines than bytes")
			}
			line, b, err := lr.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if line <= prev {
				t.Fatalf("line %d after %d", line, prev)
			}
			prev = line
			if errors.Is(err, ErrLineTooLong) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 || len(b) > max+2 || bytes.ContainsAny(b, "\n") {
				t.Fatalf("line %d: %q", line, b)
			}
		}
	})
}
