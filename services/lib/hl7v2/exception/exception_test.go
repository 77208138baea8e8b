package exception

import "testing"

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
