package purpose

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestFromCoding(t *testing.T) {
	tests := []struct {
		system, code string
		want         Purpose
	}{
		{SystemTEFCA, "T-TRTMNT", Treatment},
		{"2.16.840.1.113883.3.7204.1.5.2.1", "T-IAS", IndividualAccess}, // bare OID, as in SAML
		{SystemTEFCA, " T-PYMNT ", Payment},
		{SystemTEFCA, "T-HCO-CC", Operations},
		{SystemTEFCA, "T-PH-ECR", PublicHealth},
		{SystemTEFCA, "T-GOVDTRM", GovernmentBenefits},
		{SystemTEFCA, "REQUEST", IndividualAccess}, // QTF 1.0
		{SystemTEFCA, "t-trtmnt", Unknown},         // codes are case-sensitive
		{SystemTEFCA, "TREAT", Unknown},            // a v3 code in the TEFCA system
		{SystemActReason, "TREAT", Treatment},
		{SystemActReasonOID, "ETREAT", Treatment},
		{"2.16.840.1.113883.5.8", "PATRQT", IndividualAccess},
		{SystemActReason, "HPAYMT", Payment},
		{SystemActReason, "COVERAGE", Payment},
		{SystemActReason, "HOPERAT", Operations},
		{SystemActReason, "PUBHLTH", PublicHealth},
		{SystemActReason, "HRESCH", Research},
		{SystemActReason, "HMARKT", Other},
		{SystemActReason, "T-TRTMNT", Unknown},
		{SystemNHIN, "COVERAGE", GovernmentBenefits},
		{SystemNHIN, "TREATMENT", Treatment},
		{"", "TREAT", Unknown}, // a code without its system
		{"", "", Unknown},
		{"http://example.org/purposes", "treatment", Unknown},
	}
	for _, tt := range tests {
		if got := FromCoding(tt.system, tt.code); got != tt.want {
			t.Errorf("FromCoding(%q, %q) = %q, want %q", tt.system, tt.code, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, p := range All {
		if got, err := Parse(string(p)); err != nil || got != p {
			t.Errorf("Parse(%q) = %q, %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "Treatment", "T-TRTMNT", "operations "} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestRequiredResponse(t *testing.T) {
	want := map[Purpose]bool{Treatment: true, IndividualAccess: true}
	for _, p := range All {
		if got := RequiredResponse(p); got != want[p] {
			t.Errorf("RequiredResponse(%s) = %v", p, got)
		}
	}
}

func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Table() {
		key := c.System + "|" + c.Code
		if seen[key] {
			t.Errorf("%s twice", key)
		}
		seen[key] = true
		if _, err := Parse(string(c.Purpose)); err != nil || c.Purpose == Unknown {
			t.Errorf("%s: purpose %q", key, c.Purpose)
		}
		switch c.System {
		case SystemTEFCA, SystemActReason, SystemNHIN:
		default:
			t.Errorf("%s: system not one of the constants", key)
		}
		if c.Display == "" {
			t.Errorf("%s: no meaning", key)
		}
	}
	for _, p := range All[:len(All)-2] { // every purpose but other and unknown has a code
		found := false
		for _, c := range Table() {
			found = found || c.Purpose == p
		}
		if !found {
			t.Errorf("no code for %s", p)
		}
	}
}

func TestTableVersion(t *testing.T) {
	// The fingerprint of the table this Version names. A change to the
	// table fails here: move Version with it, and update the fingerprint.
	var b strings.Builder
	for _, c := range Table() {
		fmt.Fprintf(&b, "%s|%s=%s;", c.System, c.Code, c.Purpose)
	}
	for _, p := range All {
		fmt.Fprintf(&b, "%s/%v;", p, RequiredResponse(p))
	}
	sum := sha256.Sum256([]byte(Version + "\n" + b.String()))
	const want = "1d6399ee78e17142"
	if got := hex.EncodeToString(sum[:8]); got != want {
		t.Fatalf("purpose table or Version changed (fingerprint %s, was %s): a changed table needs a new Version", got, want)
	}
}

func TestPick(t *testing.T) {
	tests := []struct {
		name    string
		codings []Coding
		want    Purpose
		code    string
	}{
		{"none", nil, "", ""},
		{"no code", []Coding{{SystemActReason, " "}}, "", ""},
		{"known", []Coding{{SystemActReason, "TREAT"}}, Treatment, SystemActReason + "|TREAT"},
		{"bare OID written urn:oid", []Coding{{"2.16.840.1.113883.3.7204.1.5.2.1", "T-IAS"}}, IndividualAccess, SystemTEFCA + "|T-IAS"},
		{"first known wins over an earlier unknown", []Coding{{"http://example.org/pou", "X"}, {SystemTEFCA, "T-PYMNT"}, {SystemActReason, "TREAT"}}, Payment, SystemTEFCA + "|T-PYMNT"},
		{"unknown: the first sent", []Coding{{"", ""}, {"http://example.org/pou", "X"}, {SystemActReason, "NOPE"}}, Unknown, "http://example.org/pou|X"},
		{"a code without its system", []Coding{{"", "TREAT"}}, Unknown, "|TREAT"},
	}
	for _, tt := range tests {
		p, code := Pick(tt.codings...)
		if p != tt.want || code != tt.code {
			t.Errorf("%s: Pick = %q, %q; want %q, %q", tt.name, p, code, tt.want, tt.code)
		}
	}
}

func TestIsSystem(t *testing.T) {
	for system, want := range map[string]bool{
		SystemTEFCA: true, "2.16.840.1.113883.3.7204.1.5.2.1": true, SystemActReason: true,
		SystemActReasonOID: true, "2.16.840.1.113883.5.8": true, SystemNHIN: true,
		"http://terminology.hl7.org/CodeSystem/v3-Confidentiality": false, "": false,
	} {
		if got := IsSystem(system); got != want {
			t.Errorf("IsSystem(%q) = %v", system, got)
		}
	}
}
