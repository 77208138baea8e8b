package service

import (
	"errors"
	"fmt"

	"github.com/hinscore/hinscore/services/lib/domain/patient"
)

// EnvAdminAddr names the variable that sets a standalone service's admin
// address (Process.AdminAddr).
const EnvAdminAddr = "HINSCORE_ADMIN_ADDR"

// Process is what every standalone service process reads besides its own
// settings: where its admin endpoints listen and how much it logs. Each
// service embeds it with its own admin port:
// `defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9101"`.
type Process struct {
	AdminAddr string `env:"HINSCORE_ADMIN_ADDR" help:"address of /metrics, /healthz and /readyz"`
	LogLevel  string `env:"HINSCORE_LOG_LEVEL" default:"info" help:"zerolog level (debug, info, warn, error); an unknown one is info"`
}

// PatientKey is the HMAC key of the patient tokens: 32 or more hex digits
// are read as hex, anything else as the string's bytes (patient.ParseKey).
type PatientKey []byte

// UnmarshalText reads the key.
func (k *PatientKey) UnmarshalText(b []byte) error {
	*k = patient.ParseKey(string(b))
	return nil
}

// PatientTokens is the key of the patient tokens and its id, the one
// setting of both ingests: an HL7 v2 message and a FHIR resource give a
// patient the same token only under the same key.
type PatientTokens struct {
	PatientKey   PatientKey `env:"HINSCORE_PATIENT_KEY" default:"hinscore-dev-patient-key-not-secret" help:"HMAC key of the patient tokens: 32+ hex digits, or a string of 16+ bytes; the same in both ingests. Unset: a public development key (a warning is logged)"`
	PatientKeyID string     `env:"HINSCORE_PATIENT_KEY_ID" default:"dev" help:"id of that key, stored in every event"`
}

// IsDev reports whether the key is the public development key.
func (p PatientTokens) IsDev() bool { return string(p.PatientKey) == patient.DevKey }

// Validate names each bad variable.
func (p PatientTokens) Validate() error {
	var ps Problems
	if len(p.PatientKey) < 16 {
		ps.Add("HINSCORE_PATIENT_KEY", "%d bytes: want at least 16", len(p.PatientKey))
	}
	if p.PatientKeyID == "" {
		ps.Add("HINSCORE_PATIENT_KEY_ID", "empty")
	}
	return ps.Err()
}

// Problems collects what a configuration's Validate finds wrong, each
// under the name of its variable, and the shared groups' own findings.
type Problems []error

// Add records a problem of the variable name.
func (p *Problems) Add(name, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Include records the errors of groups' Validate (nil ones are skipped).
func (p *Problems) Include(errs ...error) {
	for _, err := range errs {
		if err != nil {
			*p = append(*p, err)
		}
	}
}

// Err joins the problems, nil when there is none.
func (p Problems) Err() error { return errors.Join(p...) }
