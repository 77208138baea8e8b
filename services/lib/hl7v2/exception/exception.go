// Package exception recognises the information-blocking exceptions of 45
// CFR part 171 (DOMAIN.md) and the redirect codes in messages: as codes of
// the urn:hinscore:ib-exception system, or cited in free text. HL7 v2 and
// FHIR ingest share it so both read a citation the same way.
package exception

import "strings"

// System is the code system of exception and redirect codes.
const System = "urn:hinscore:ib-exception"

// Redirect codes: the requester was told to use another channel.
const (
	RedirectPortal = "redirect-portal"
	RedirectFax    = "redirect-fax"
	RedirectOther  = "redirect-other"
)

// codes are the exceptions of DOMAIN.md.
var codes = [...]struct{ Code, Name string }{
	{"171.201", "preventing harm"},
	{"171.202", "privacy"},
	{"171.203", "security"},
	{"171.204", "infeasibility"},
	{"171.205", "health IT performance"},
	{"171.206", "protecting care access"},
	{"171.301", "manner"},
	{"171.302", "fees"},
	{"171.303", "licensing"},
	{"171.403", "TEFCA manner"},
}

// redirectPhrases are what a refusal's text says when it sends the
// requester elsewhere, most specific first. Matching is case-insensitive on
// whole words.
var redirectPhrases = [...]struct{ Phrase, Code string }{
	{RedirectPortal, RedirectPortal},
	{RedirectFax, RedirectFax},
	{RedirectOther, RedirectOther},
	{"patient portal", RedirectPortal},
	{"portal", RedirectPortal},
	{"fax", RedirectFax},
	{"facsimile", RedirectFax},
	{"request by mail", RedirectOther},
	{"call the", RedirectOther},
	{"contact the records department", RedirectOther},
}

// Name returns the exception's name, or "" when code is not one of them.
func Name(code string) string {
	for _, c := range codes {
		if c.Code == code {
			return c.Name
		}
	}
	return ""
}

// IsRedirect reports whether code is a redirect code.
func IsRedirect(code string) bool {
	return code == RedirectPortal || code == RedirectFax || code == RedirectOther
}

// Valid reports whether code is an exception or a redirect code.
func Valid(code string) bool { return Name(code) != "" || IsRedirect(code) }

// Codes lists the exception codes.
func Codes() []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = c.Code
	}
	return out
}

// FromCoding returns code when a coding of system names a known exception
// or redirect, else "".
func FromCoding(system, code string) string {
	if system != System {
		return ""
	}
	code = strings.TrimSpace(code)
	if Valid(code) {
		return code
	}
	return ""
}

// FromText returns the first known exception cited in text as 171.ddd
// (e.g. "denied under 45 CFR 171.204"), or "". A 171.ddd that is not an
// exception of the rule is skipped.
func FromText(text string) string {
	for i := 0; i+7 <= len(text); i++ {
		if text[i] != '1' || text[i+1] != '7' || text[i+2] != '1' || text[i+3] != '.' {
			continue
		}
		if i > 0 && isDigit(text[i-1]) {
			continue // part of a longer number
		}
		c := text[i : i+7]
		if !isDigit(c[4]) || !isDigit(c[5]) || !isDigit(c[6]) {
			continue
		}
		if i+7 < len(text) && isDigit(text[i+7]) {
			continue
		}
		if Name(c) != "" {
			return c
		}
	}
	return ""
}

// RedirectFromText returns the redirect code a text names ("use the patient
// portal" → redirect-portal), or "".
func RedirectFromText(text string) string {
	lower := strings.ToLower(text)
	for _, p := range redirectPhrases {
		if containsWord(lower, p.Phrase) {
			return p.Code
		}
	}
	return ""
}

// containsWord reports whether phrase occurs in s not inside a longer word.
func containsWord(s, phrase string) bool {
	for off := 0; ; {
		i := strings.Index(s[off:], phrase)
		if i < 0 {
			return false
		}
		i += off
		j := i + len(phrase)
		if (i == 0 || !isLetter(s[i-1])) && (j == len(s) || !isLetter(s[j])) {
			return true
		}
		off = i + 1
	}
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
