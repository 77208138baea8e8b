// Package purpose maps the exchange purposes that requests carry — TEFCA
// exchange purpose (XP) codes, HL7 v3 PurposeOfUse codes (in a SAML/XUA
// assertion, an ATNA audit's PurposeOfUse, FHIR's purposeOfEvent) and the
// NHIN purpose-of-use codes of eHealth Exchange assertions — to one
// canonical purpose, as one versioned table. Which purposes require an
// answer is decided on the canonical purpose.
package purpose

import (
	"fmt"
	"strings"
)

// Version names the table below. Change it with the table: an outcome is
// classified against a version, and a changed table with an unchanged
// version would make two runs disagree without saying why
// (TestTableVersion fails until it moves).
const Version = "purpose-2026.1"

// Purpose is a canonical exchange purpose, by the name analysts see.
type Purpose string

// The canonical purposes, in the order scorecards print them.
const (
	Treatment          Purpose = "treatment"
	Payment            Purpose = "payment"
	Operations         Purpose = "operations"
	PublicHealth       Purpose = "public_health"
	IndividualAccess   Purpose = "individual_access"
	GovernmentBenefits Purpose = "government_benefits"
	Research           Purpose = "research"
	Other              Purpose = "other"   // a known code for a purpose outside the ones above
	Unknown            Purpose = "unknown" // no code, or one the table does not know
)

// All lists every purpose in the order scorecards print them.
var All = [...]Purpose{
	Treatment, Payment, Operations, PublicHealth, IndividualAccess,
	GovernmentBenefits, Research, Other, Unknown,
}

// Parse returns the purpose of a canonical name.
func Parse(name string) (Purpose, error) {
	for _, p := range All {
		if string(p) == name {
			return p, nil
		}
	}
	return "", fmt.Errorf("purpose: unknown purpose %q", name)
}

// RequiredResponse reports whether TEFCA requires a responder to answer a
// request made for p: the Exchange Purposes SOP (section 4.2, Table 1,
// under section 9.4 of the Common Agreement; v5.1 of July 2026) says
// Responding Nodes MUST Respond to T-TRTMNT (those of health care
// providers) and T-IAS; every other XP is SHOULD or MAY, except
// T-GOVDTRM-SSD for the nodes that elected it, which this default leaves
// out. DOMAIN.md makes the set configuration; this
// is its default.
func RequiredResponse(p Purpose) bool {
	return p == Treatment || p == IndividualAccess
}

// Code systems, as they appear in codings. An assertion names a system by
// its bare OID; FromCoding accepts an OID with or without "urn:oid:".
const (
	// SystemTEFCA is the OID of TEFCA's XP codes as the Exchange Purposes
	// SOP gives it. No canonical FHIR URI for the XP code system is
	// confirmed here; a coding with another URI for these codes is
	// Unknown until the table learns it.
	SystemTEFCA = "urn:oid:2.16.840.1.113883.3.7204.1.5.2.1"
	// SystemActReason is HL7 v3 ActReason, whose PurposeOfUse codes FHIR
	// and IHE use; SystemActReasonOID is the same system by OID.
	SystemActReason    = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemActReasonOID = "urn:oid:2.16.840.1.113883.5.8"
	// SystemNHIN is the NHIN (eHealth Exchange) purpose-of-use code
	// system of SAML assertions.
	SystemNHIN = "urn:oid:2.16.840.1.113883.3.18.7.1"
)

// Code is one row of the table: a code of a system and its purpose.
type Code struct {
	System  string // one of the System constants
	Code    string // case-sensitive, as the system defines it
	Display string // the system's meaning
	Purpose Purpose
}

// table is every code known, grouped by system.
var table = [...]Code{
	// TEFCA XP codes (Exchange Purposes SOP, Table 1). The sub-purposes
	// of T-HCO, T-PH and T-GOVDTRM are those of SOP v4.0 and v5.1
	// (T-HCO-QM is v4.0 only); they map to their parent's purpose.
	{SystemTEFCA, "T-TRTMNT", "Treatment", Treatment},
	{SystemTEFCA, "T-PYMNT", "Payment", Payment},
	{SystemTEFCA, "T-HCO", "Health Care Operations", Operations},
	{SystemTEFCA, "T-HCO-CC", "Care Coordination/Case Management", Operations},
	{SystemTEFCA, "T-HCO-HED", "HEDIS Reporting", Operations},
	{SystemTEFCA, "T-HCO-QM", "Quality Measure Reporting", Operations},
	{SystemTEFCA, "T-HCO-QAI", "Quality Assessment and Improvement", Operations},
	{SystemTEFCA, "T-HCO-POP", "Population-Based Activities", Operations},
	{SystemTEFCA, "T-HCO-PTSAFETY", "Patient Safety", Operations},
	{SystemTEFCA, "T-HCO-PERF", "Performance Review", Operations},
	{SystemTEFCA, "T-PH", "Public Health", PublicHealth},
	{SystemTEFCA, "T-PH-ECR", "Electronic Case Reporting", PublicHealth},
	{SystemTEFCA, "T-PH-ELR", "Electronic Lab Reporting", PublicHealth},
	{SystemTEFCA, "T-IAS", "Individual Access Services", IndividualAccess},
	{SystemTEFCA, "T-GOVDTRM", "Government Benefits Determination", GovernmentBenefits},
	{SystemTEFCA, "T-GOVDTRM-SSD", "Social Security Determination", GovernmentBenefits},

	// HL7 v3 ActReason, PurposeOfUse branch.
	{SystemActReason, "TREAT", "treatment", Treatment},
	{SystemActReason, "ETREAT", "emergency treatment", Treatment},
	{SystemActReason, "BTG", "break the glass", Treatment},
	{SystemActReason, "HPAYMT", "healthcare payment", Payment},
	{SystemActReason, "CLMATTCH", "claim attachment", Payment},
	{SystemActReason, "COVERAGE", "coverage under policy or program", Payment},
	{SystemActReason, "ELIG", "eligibility determination", Payment},
	{SystemActReason, "HOPERAT", "healthcare operations", Operations},
	{SystemActReason, "CAREMGT", "care management", Operations},
	{SystemActReason, "PUBHLTH", "public health", PublicHealth},
	{SystemActReason, "PATRQT", "patient requested", IndividualAccess},
	{SystemActReason, "PWATRNY", "power of attorney", IndividualAccess},
	{SystemActReason, "HRESCH", "healthcare research", Research},
	{SystemActReason, "CLINTRCH", "clinical trial research", Research},
	{SystemActReason, "FAMRQT", "family requested", Other},
	{SystemActReason, "SUPNWK", "support network", Other},
	{SystemActReason, "HMARKT", "healthcare marketing", Other},
	{SystemActReason, "HLEGAL", "legal", Other},
	{SystemActReason, "HDIRECT", "directory", Other},
	{SystemActReason, "HSYSADMIN", "system administration", Other},

	// The first TEFCA codes (QHIN Technical Framework 1.0), before the
	// T- prefix, in the same system.
	{SystemTEFCA, "TREATMENT", "Treatment", Treatment},
	{SystemTEFCA, "PAYMENT", "Payment", Payment},
	{SystemTEFCA, "OPERATIONS", "Health Care Operations", Operations},
	{SystemTEFCA, "PUBLICHEALTH", "Public Health", PublicHealth},
	{SystemTEFCA, "REQUEST", "Individual Access Services", IndividualAccess},
	{SystemTEFCA, "COVERAGE", "Government Benefits Determination", GovernmentBenefits},

	// NHIN purpose of use (eHealth Exchange assertions): only the codes
	// whose use is confirmed. COVERAGE is "disclosures for insurance or
	// disability coverage determination", which the Social Security
	// Administration asserts for disability claims; hence government
	// benefits here, unlike v3's COVERAGE.
	{SystemNHIN, "TREATMENT", "Treatment", Treatment},
	{SystemNHIN, "COVERAGE", "Insurance or disability coverage determination", GovernmentBenefits},
}

// Table returns a copy of every row.
func Table() []Code { return append([]Code(nil), table[:]...) }

// canonicalSystem folds the spellings of one system into its constant:
// a bare OID or a urn:oid: one.
func canonicalSystem(system string) string {
	system = strings.TrimSpace(system)
	if !strings.HasPrefix(system, "urn:oid:") && len(system) > 0 && system[0] >= '0' && system[0] <= '9' {
		system = "urn:oid:" + system
	}
	if system == SystemActReasonOID {
		return SystemActReason
	}
	return system
}

// Lookup returns the row of a coding.
func Lookup(system, code string) (Code, bool) {
	system, code = canonicalSystem(system), strings.TrimSpace(code)
	for _, c := range table {
		if c.System == system && c.Code == code {
			return c, true
		}
	}
	return Code{}, false
}

// FromCoding returns the purpose of a coding, Unknown when the table does
// not know it. Codes are matched exactly within their system: a code
// without its system, or in another one, is Unknown, since the same
// string means different purposes in different systems (COVERAGE).
func FromCoding(system, code string) Purpose {
	if c, ok := Lookup(system, code); ok {
		return c.Purpose
	}
	return Unknown
}

// Coding is a purpose code as a message sent it.
type Coding struct{ System, Code string }

// Sent writes a coding as events record it: "system|code", a bare OID
// system in its urn:oid: form, so that one code sent by OID in one format
// and by urn:oid in another is recorded once.
func (c Coding) Sent() string {
	system := strings.TrimSpace(c.System)
	if system != "" && system[0] >= '0' && system[0] <= '9' {
		system = "urn:oid:" + system
	}
	return system + "|" + strings.TrimSpace(c.Code)
}

// IsSystem reports whether system is a purpose-of-use code system the
// table reads (in any of its spellings): where purposes share an element
// with other codes (FHIR meta.security holds confidentiality and other
// labels too), only codings of these systems are purposes.
func IsSystem(system string) bool {
	switch canonicalSystem(system) {
	case SystemTEFCA, SystemActReason, SystemNHIN:
		return true
	}
	return false
}

// Pick is the one rule every format's mapping picks a request's purpose
// by, among the codings it carries in the order it reads them: the first
// coding the table knows wins; else the first one with a code, as Unknown;
// "" and "" when none has a code. code is the chosen coding as sent
// (Coding.Sent).
func Pick(codings ...Coding) (p Purpose, code string) {
	first := -1
	for i, c := range codings {
		if strings.TrimSpace(c.Code) == "" {
			continue
		}
		if known := FromCoding(c.System, c.Code); known != Unknown {
			return known, c.Sent()
		}
		if first < 0 {
			first = i
		}
	}
	if first < 0 {
		return "", ""
	}
	return Unknown, codings[first].Sent()
}
