package exception

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestFromText(t *testing.T) {
	tests := []struct{ text, want string }{
		{"denied under 45 CFR 171.204", "171.204"},
		{"171.999 then 171.202 applies", "171.202"},
		{"ref 1171.204 or 171.2045", ""},
		{"171.403", "171.403"},
		{"no reason", ""},
		{"171.", ""},
	}
	for _, tt := range tests {
		if got := FromText(tt.text); got != tt.want {
			t.Errorf("FromText(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestRedirectFromText(t *testing.T) {
	tests := []struct{ text, want string }{
		{"Please use the Patient Portal", RedirectPortal},
		{"send a FAX to 555-0100", RedirectFax},
		{"code redirect-other", RedirectOther},
		{"fairfax county", ""},
		{"internal error", ""},
	}
	for _, tt := range tests {
		if got := RedirectFromText(tt.text); got != tt.want {
			t.Errorf("RedirectFromText(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestFromCoding(t *testing.T) {
	tests := []struct{ system, code, want string }{
		{System, "171.204", "171.204"},
		{System, "redirect-fax", "redirect-fax"},
		{System, "171.999", ""},
		{"HL70357", "171.204", ""},
	}
	for _, tt := range tests {
		if got := FromCoding(tt.system, tt.code); got != tt.want {
			t.Errorf("FromCoding(%q, %q) = %q, want %q", tt.system, tt.code, got, tt.want)
		}
	}
	if len(Codes()) != 10 || !Valid("171.206") || Valid("171.207") {
		t.Errorf("code list: %v", Codes())
	}
}

func TestTableVersion(t *testing.T) {
	// The fingerprint of the table this Version names. A change to the
	// table fails here: move Version with it, and update the fingerprint.
	var b strings.Builder
	for _, c := range Table() {
		fmt.Fprintf(&b, "%s=%s/%d;", c.Code, c.Name, c.Kind)
	}
	sum := sha256.Sum256([]byte(Version + "\n" + b.String()))
	const want = "a3ea6f1a9d97e5a4"
	if got := hex.EncodeToString(sum[:8]); got != want {
		t.Fatalf("exception table or Version changed (fingerprint %s, was %s): a changed table needs a new Version", got, want)
	}
}

func TestTable(t *testing.T) {
	if len(Codes()) != 10 {
		t.Fatalf("%d exceptions, DOMAIN.md has 10", len(Codes()))
	}
	for _, c := range Table() {
		if !Valid(c.Code) || Label(c.Code) != c.Name {
			t.Errorf("%s: Valid/Label", c.Code)
		}
		if IsRedirect(c.Code) != (c.Kind == Redirect) || IsException(c.Code) != (c.Kind == Exception) {
			t.Errorf("%s: kind", c.Code)
		}
		if IsRedirect(c.Code) != strings.HasPrefix(c.Code, RedirectPrefix) {
			t.Errorf("%s: a redirect code starts with %s, and only a redirect code", c.Code, RedirectPrefix)
		}
	}
	if Name(RedirectFax) != "" || Label(RedirectFax) != "told to use fax" || Name("171.204") != "infeasibility" {
		t.Error("Name is for exceptions, Label for both")
	}
	if Valid("171.999") || IsException("redirect-portal") {
		t.Error("unknown code accepted")
	}
	for in, want := range map[string]string{"urn:hinscore:ib-exception|171.204": "171.204", " 171.202 ": "171.202", "": ""} {
		if got := Bare(in); got != want {
			t.Errorf("Bare(%q) = %q, want %q", in, got, want)
		}
	}
}
