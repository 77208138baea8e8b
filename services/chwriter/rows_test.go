package chwriter

import (
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

func TestEnumNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{roleName(hinscorev1.Role_ROLE_REQUEST), "request"},
		{roleName(hinscorev1.Role_ROLE_RESPONSE), "response"},
		{roleName(hinscorev1.Role_ROLE_INTERIM), "interim"},
		{roleName(hinscorev1.Role_ROLE_CANCEL), "cancel"},
		{roleName(hinscorev1.Role_ROLE_NOTIFICATION), "notification"},
		{roleName(hinscorev1.Role_ROLE_UNSPECIFIED), ""},
		{roleName(hinscorev1.Role(42)), "42"},
		{statusName(hinscorev1.Status_STATUS_OK), "ok"},
		{statusName(hinscorev1.Status_STATUS_PARTIAL), "partial"},
		{statusName(hinscorev1.Status_STATUS_NOT_FOUND), "not_found"},
		{statusName(hinscorev1.Status_STATUS_REFUSED), "refused"},
		{statusName(hinscorev1.Status_STATUS_REDIRECTED), "redirected"},
		{statusName(hinscorev1.Status_STATUS_ERROR_TRANSIENT), "error_transient"},
		{statusName(hinscorev1.Status_STATUS_ERROR_PERMANENT), "error_permanent"},
		{statusName(hinscorev1.Status_STATUS_ACCEPTED), "accepted"},
		{statusName(hinscorev1.Status_STATUS_CANCELLED), "cancelled"},
		{statusName(hinscorev1.Status_STATUS_UNSPECIFIED), ""},
		{formatName(hinscorev1.Format_FORMAT_HL7V2), "hl7v2"},
		{formatName(hinscorev1.Format_FORMAT_FHIR), "fhir"},
		{formatName(hinscorev1.Format_FORMAT_UNSPECIFIED), ""},
		{formatName(hinscorev1.Format_FORMAT_ATNA), "atna"},
		{formatName(hinscorev1.Format_FORMAT_SOAP), "soap"},
		{sideName(hinscorev1.Side_SIDE_INITIATING), "initiating"},
		{sideName(hinscorev1.Side_SIDE_RESPONDING), "responding"},
		{sideName(hinscorev1.Side_SIDE_UNSPECIFIED), ""},
		{purposeName(""), "unknown"},
		{purposeName("treatment"), "treatment"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestNullable(t *testing.T) {
	if nullable(false, 5) != nil {
		t.Error("nullable(false, 5) != nil")
	}
	if p := nullable(true, 0); p == nil || *p != 0 {
		t.Errorf("nullable(true, 0) = %v, want a pointer to 0", p)
	}
}

func TestAddRejectsWithoutChangingTheBatch(t *testing.T) {
	good := &hinscorev1.ExchangeEvent{EventId: "6032b9ab-57b1-5e3b-9fa6-d618c2b69c18", Network: "n", EventTimeMs: 1}
	tests := []struct {
		name   string
		mutate func(*hinscorev1.ExchangeEvent)
	}{
		{"empty id", func(e *hinscorev1.ExchangeEvent) { e.EventId = "" }},
		{"bad id", func(e *hinscorev1.ExchangeEvent) { e.EventId = "x" }},
		{"negative time", func(e *hinscorev1.ExchangeEvent) { e.EventTimeMs = -1 }},
		{"time after 2106", func(e *hinscorev1.ExchangeEvent) { e.IngestTimeMs = maxDateTimeMs + 1 }},
		{"partition overflow", func(e *hinscorev1.ExchangeEvent) { e.Partition = 70000 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r eventRows
			if err := r.add(mustMarshal(t, good)); err != nil {
				t.Fatal(err)
			}
			bad := proto.Clone(good).(*hinscorev1.ExchangeEvent)
			tt.mutate(bad)
			if err := r.add(mustMarshal(t, bad)); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("add = %v, want ErrUndecodable", err)
			}
			checkColumns(t, &r, 1)
		})
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkColumns asserts every column slice of a rows struct has length n (and,
// for outcomes, every step column has the same length).
func checkColumns(t testing.TB, rows any, n int) {
	t.Helper()
	v := reflect.ValueOf(rows).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			steps := -1
			for j := range f.NumField() {
				if l := f.Field(j).Len(); steps == -1 {
					steps = l
				} else if l != steps {
					t.Fatalf("step column %s has %d values, others %d", f.Type().Field(j).Name, l, steps)
				}
			}
			continue
		}
		if f.Len() != n {
			t.Fatalf("column %s has %d values, want %d", v.Type().Field(i).Name, f.Len(), n)
		}
	}
}

// The writer decodes bytes anyone who can publish on the bus can send: a
// message either becomes whole rows or is rejected as undecodable, never a
// partial row that would misalign the columns of the batch.
func FuzzEventRows(f *testing.F) {
	f.Add(mustMarshal(f, &hinscorev1.ExchangeEvent{EventId: "6032b9ab-57b1-5e3b-9fa6-d618c2b69c18", Network: "n", ReasonCodes: []string{"a"}}))
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r eventRows
		before := r.len()
		err := r.add(data)
		if err != nil && !errors.Is(err, ErrUndecodable) {
			t.Fatalf("add error %v is not ErrUndecodable", err)
		}
		want := before
		if err == nil {
			want++
		}
		checkColumns(t, &r, want)
	})
}

func FuzzOutcomeRows(f *testing.F) {
	f.Add(mustMarshal(f, &hinscorev1.Outcome{
		OutcomeId: "6644580d-f8d3-5c07-9672-50b1160491c6", Version: 2, Network: "n",
		OutcomeClass: hinscorev1.OutcomeClass_OUTCOME_CLASS_FULFILLED, HasTtf: true, TtfMs: 5,
		Steps: []*hinscorev1.Step{{EventId: "d96e2738-e8bb-5c66-989e-99c12f263e87", EventTimeMs: 1}},
	}))
	f.Add([]byte{0x0a, 0x03, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r outcomeRows
		err := r.add(data)
		if err != nil && !errors.Is(err, ErrUndecodable) {
			t.Fatalf("add error %v is not ErrUndecodable", err)
		}
		want := 0
		if err == nil {
			want = 1
		}
		checkColumns(t, &r, want)
	})
}
