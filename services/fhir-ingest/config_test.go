package fhiringest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/service"
)

func envFile(t *testing.T, path string) *service.Env {
	t.Helper()
	env, err := service.EnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestConfigFromEnv(t *testing.T) {
	got, err := ConfigFromEnv(envFile(t, "testdata/config/full.env"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr:       "0.0.0.0:8443",
		Partitions: 8,
		Tokens: map[string][]string{
			"northstar": {HashToken("token-a"), HashToken("token-b")},
			"bayview":   {HashToken("token-c")},
		},
		PatientKey:   []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
		PatientKeyID: "2026-03",
		MaxBodyBytes: 1 << 20,
		TLSCert:      "/etc/hinscore/fhir.crt",
		TLSKey:       "/etc/hinscore/fhir.key",
	}
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
			"HINSCORE_PATIENT_KEY: 5 bytes", "HINSCORE_FHIR_MAX_BODY", "HINSCORE_FHIR_TLS_CERT"}},
		{"no-tokens.env", []string{"HINSCORE_FHIR_TOKENS: no network has a token"}},
		{"shared-token.env", []string{"one token hash is given to both"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			_, err := ConfigFromEnv(envFile(t, "testdata/config/"+tc.file))
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
