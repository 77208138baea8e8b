// Package exception holds the information-blocking exceptions of 45 CFR
// part 171 (DOMAIN.md) and the redirect codes, as one versioned table, and
// recognises them in messages: as codes of the urn:hinscore:ib-exception
// system, or cited in free text. Every format's mapping, the linker's
// classification and the scorecard's names read this one table.
package exception

import "strings"

// System is the code system of exception and redirect codes.
const System = "urn:hinscore:ib-exception"

// Version names the table below. Change it with the table: outcomes and
// scorecards are classified against a version, and a changed table with an
// unchanged version would make two runs disagree without saying why
// (TestTableVersion fails until it moves).
const Version = "45cfr171-2024.1"

// Kind says what a code tells the requester.
type Kind int

const (
	// Exception is a refusal citing an exception of 45 CFR part 171:
	// lawful on its face.
	Exception Kind = iota + 1
	// Redirect sends the requester to another channel (portal, fax, ...).
	Redirect
)

// Redirect codes: the requester was told to use another channel.
const (
	RedirectPortal = "redirect-portal"
	RedirectFax    = "redirect-fax"
	RedirectOther  = "redirect-other"
)

// RedirectPrefix starts every redirect code.
const RedirectPrefix = "redirect-"

// Code is one row of the table.
type Code struct {
	Code string // "171.204", "redirect-portal"
	Name string // DOMAIN.md's name: "infeasibility", "told to use a portal"
	Kind Kind
}

// table is every code, exceptions first in the order of the rule.
var table = [...]Code{
	{"171.201", "preventing harm", Exception},
	{"171.202", "privacy", Exception},
	{"171.203", "security", Exception},
	{"171.204", "infeasibility", Exception},
	{"171.205", "health IT performance", Exception},
	{"171.206", "protecting care access", Exception},
	{"171.301", "manner", Exception},
	{"171.302", "fees", Exception},
	{"171.303", "licensing", Exception},
	{"171.403", "TEFCA manner", Exception},
	{RedirectPortal, "told to use a portal", Redirect},
	{RedirectFax, "told to use fax", Redirect},
	{RedirectOther, "told to use another channel", Redirect},
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

// Table returns a copy of every code, exceptions first.
func Table() []Code { return append([]Code(nil), table[:]...) }

// Lookup returns the row of code.
func Lookup(code string) (Code, bool) {
	for _, c := range table {
		if c.Code == code {
			return c, true
		}
	}
	return Code{}, false
}

// Name returns the name of an exception, or "" when code is not one of them.
func Name(code string) string {
	if c, ok := Lookup(code); ok && c.Kind == Exception {
		return c.Name
	}
	return ""
}

// Label returns the name of an exception or a redirect code ("" for
// neither): what a scorecard prints beside a code.
func Label(code string) string {
	c, _ := Lookup(code)
	return c.Name
}

// IsException reports whether code is an exception of the rule.
func IsException(code string) bool { return Name(code) != "" }

// IsRedirect reports whether code is a redirect code.
func IsRedirect(code string) bool {
	c, ok := Lookup(code)
	return ok && c.Kind == Redirect
}

// Valid reports whether code is an exception or a redirect code.
func Valid(code string) bool { _, ok := Lookup(code); return ok }

// Codes lists the exception codes.
func Codes() []string {
	var out []string
	for _, c := range table {
		if c.Kind == Exception {
			out = append(out, c.Code)
		}
	}
	return out
}

// Bare drops a "system|" prefix from a coded value ("urn:...|171.204" →
// "171.204") and trims spaces.
func Bare(code string) string {
	if i := strings.LastIndexByte(code, '|'); i >= 0 {
		return code[i+1:]
	}
	return strings.TrimSpace(code)
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
		if IsException(c) {
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
