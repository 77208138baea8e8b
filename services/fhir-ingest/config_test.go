package fhiringest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/lib/service/servicetest"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/fhir-ingest/fhirmap"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

func TestConfigFromEnv(t *testing.T) {
	got, err := ConfigFromEnv(servicetest.ConfigFile(t, "full.env"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr:         "0.0.0.0:8443",
		Partitioning: bus.Partitioning{PartitionCount: 8},
		Tokens: map[string][]string{
			"northstar": {HashToken("token-a"), HashToken("token-b")},
			"bayview":   {HashToken("token-c")},
		},
		PatientTokens: service.PatientTokens{
			PatientKey:   []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
			PatientKeyID: "2026-03",
		},
		// Not in full.env: the defaults of the settings every service shares.
		NATS:         DefaultConfig().NATS,
		Process:      DefaultConfig().Process,
		MaxBodyBytes: 1 << 20,
		TLSCert:      "/etc/hinscore/fhir.crt",
		TLSKey:       "/etc/hinscore/fhir.key",
		Classification: map[string]*fhirmap.Table{"northstar": {Version: "northstar-class/2", Rules: []fhirmap.Rule{
			{Source: "http", Match: "451", Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_REFUSED, Note: "unavailable for legal reasons"},
			{Source: "issue", Match: "suppressed", Role: hinscorev1.Role_ROLE_RESPONSE, Status: hinscorev1.Status_STATUS_NOT_FOUND, Note: "northstar suppresses only records it does not hold"},
		}}},
	}
	if got.RawKeys == nil || got.RawKeys.ID() != "2026-03" || got.RawKeys.IsDev() {
		t.Errorf("raw keys %v, want 2026-03", got.RawKeys)
	}
	got.RawKeys = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"bad.env", []string{"HINSCORE_FHIR_ADDR", "HINSCORE_PARTITIONS", "HINSCORE_FHIR_TOKENS: network northstar: \"not-a-hash\"",
			"HINSCORE_PATIENT_KEY: 5 bytes", "HINSCORE_RAW_KEYS: seal.ParseRawKeys: \"2026-03\"", "HINSCORE_FHIR_MAX_BODY", "HINSCORE_FHIR_TLS_CERT"}},
		{"no-tokens.env", []string{"HINSCORE_FHIR_TOKENS: no network has a token"}},
		{"shared-token.env", []string{"one token hash is given to both"}},
		{"class-missing.env", []string{"HINSCORE_FHIR_CLASSIFICATION: network northstar: open testdata/config/no-such-class.csv"}},
		{"class-bad-table.env", []string{"HINSCORE_FHIR_CLASSIFICATION: network northstar: testdata/config/class-bad.csv: fhirmap.ParseTable: line 2: unknown status \"blocked\""}},
		{"class-builtin-version.env", []string{"HINSCORE_FHIR_CLASSIFICATION: network northstar: version fhir-class/2 is the built-in table's"}},
		{"class-no-token.env", []string{"HINSCORE_FHIR_CLASSIFICATION: network southgate has classification rows but no token"}},
		{"soap-class-bad.env", []string{"HINSCORE_SOAP_CLASSIFICATION: network northstar: testdata/config/soap-class-bad.csv: toevent.ParseTable: line 2: unknown exception \"171.999\""}},
		{"soap-class-builtin.env", []string{"HINSCORE_SOAP_CLASSIFICATION: network northstar: version soap-class/3 is the built-in table's"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			_, err := ConfigFromEnv(servicetest.ConfigFile(t, tc.file))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
