package patient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	key := []byte("k")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("NS_AUTH|MRN123"))
	if got, want := Token(key, "NS_AUTH", "MRN123"), hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Fatalf("Token = %s, want %s", got, want)
	}
	// Every key length around the block size (a longer key is hashed
	// first) and a message past the inline buffer.
	for _, kl := range []int{0, 1, 16, 32, 63, 64, 65, 200} {
		k := make([]byte, kl)
		for i := range k {
			k[i] = byte(i*7 + kl)
		}
		for _, id := range []string{"", "MRN123", strings.Repeat("x", 300)} {
			mac := hmac.New(sha256.New, k)
			mac.Write([]byte("AUTH|" + id))
			if got, want := Token(k, "AUTH", id), hex.EncodeToString(mac.Sum(nil)); got != want {
				t.Fatalf("key of %d bytes, id of %d: Token = %s, want %s", kl, len(id), got, want)
			}
			// The Tokenizer gives the same token, twice (its reused state
			// is reset between tokens).
			tz := NewTokenizer(k)
			for range 2 {
				if got, want := tz.Token("AUTH", id), hex.EncodeToString(mac.Sum(nil)); got != want {
					t.Fatalf("key of %d bytes, id of %d: Tokenizer.Token = %s, want %s", kl, len(id), got, want)
				}
			}
		}
	}
	if Token(key, "A", "1") == Token([]byte("other"), "A", "1") {
		t.Fatal("different keys gave the same token")
	}
	if Token(key, "A|", "1") == Token(key, "A", "|1") {
		t.Log("authority and id are joined by |: a | inside either is ambiguous, as in the HL7 v2 mapping")
	}
}

func TestParseKey(t *testing.T) {
	hexKey := "00112233445566778899aabbccddeeff"
	if got := ParseKey(hexKey); len(got) != 16 || got[15] != 0xff {
		t.Fatalf("hex key read as %x", got)
	}
	if got := ParseKey("a passphrase of some length"); string(got) != "a passphrase of some length" {
		t.Fatalf("plain key read as %q", got)
	}
	if got := ParseKey("00112233"); string(got) != "00112233" {
		t.Fatalf("short hex must stay a string, got %x", got)
	}
}

func TestAuthority(t *testing.T) {
	cases := []struct{ ns, uid, typ, want string }{
		{"NORTHSTAR", "", "", "NORTHSTAR"},
		{"", "2.16.840.1.113883.4.2", "ISO", "urn:oid:2.16.840.1.113883.4.2"},
		{"NORTHSTAR", "2.16.840.1.113883.4.2", "ISO", "NORTHSTAR"},
		{"", "2.16.840.1.113883.4.2", "iso", "urn:oid:2.16.840.1.113883.4.2"},
		{"", "6F9619FF-8B86-D011-B42D-00C04FC964FF", "UUID", "urn:uuid:6f9619ff-8b86-d011-b42d-00c04fc964ff"},
		{"", "http://example.org/mrn", "URI", "http://example.org/mrn"},
		{"LOCAL", "X400:foo", "X400", "LOCAL"},
		{"", "X400:foo", "X400", "X400:foo"},
		{"", "", "ISO", ""},
	}
	for _, c := range cases {
		if got := Authority(c.ns, c.uid, c.typ); got != c.want {
			t.Errorf("Authority(%q, %q, %q) = %q, want %q", c.ns, c.uid, c.typ, got, c.want)
		}
	}
}

func TestSplitCX(t *testing.T) {
	cases := []struct {
		in, id, auth string
		ok           bool
	}{
		// The patient of the FHIR R4 example audit-event-example-pixQuery.
		{"e3cdfc81a0d24bd^^^&2.16.840.1.113883.4.2&ISO", "e3cdfc81a0d24bd", "urn:oid:2.16.840.1.113883.4.2", true},
		{"MRN-1^^^NORTHSTAR", "MRN-1", "NORTHSTAR", true},
		{"MRN-1^^^NORTHSTAR^MR", "MRN-1", "NORTHSTAR", true},
		{"MRN-1^^^NORTHSTAR&1.2.3&ISO^MR", "MRN-1", "NORTHSTAR", true},
		{"MRN-1^^^&1.2.3&ISO^MR", "MRN-1", "urn:oid:1.2.3", true},
		{"MRN-1", "", "", false},         // a plain value
		{"MRN-1^^", "", "", false},       // no authority component
		{"MRN-1^^^", "", "", false},      // an empty authority
		{"MRN-1^^^&&ISO", "", "", false}, // an ISO type without its id
		{"^^^NORTHSTAR", "", "", false},  // no id
		{"", "", "", false},
	}
	for _, c := range cases {
		id, auth, ok := SplitCX(c.in)
		if id != c.id || auth != c.auth || ok != c.ok {
			t.Errorf("SplitCX(%q) = %q, %q, %v; want %q, %q, %v", c.in, id, auth, ok, c.id, c.auth, c.ok)
		}
	}
}

// FuzzSplitCX: any value (an AuditEvent identifier, say) either is not a
// CX or gives an id without its separators and a non-empty authority,
// which Authority gives again from the parts.
func FuzzSplitCX(f *testing.F) {
	for _, s := range []string{"e3cdfc81a0d24bd^^^&2.16.840.1.113883.4.2&ISO", "MRN-1^^^NORTHSTAR&1.2.3&ISO^MR", "a^^^", "^^^&&", "x^^^&y&UUID", "\x00^^^\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, auth, ok := SplitCX(s)
		if !ok {
			if id != "" || auth != "" {
				t.Fatalf("SplitCX(%q) not a CX, yet %q, %q", s, id, auth)
			}
			return
		}
		if id == "" || auth == "" || strings.Contains(id, "^") || !strings.HasPrefix(s, id+"^") {
			t.Fatalf("SplitCX(%q) = %q, %q", s, id, auth)
		}
		hd := append(strings.Split(strings.Split(s, "^")[3], "&"), "", "")
		if got := Authority(hd[0], hd[1], hd[2]); got != auth {
			t.Fatalf("SplitCX(%q) authority %q, Authority of its parts %q", s, auth, got)
		}
	})
}

func TestNilTokenizer(t *testing.T) {
	var tz *Tokenizer
	if tz.Token("A", "1") != Token(nil, "A", "1") {
		t.Fatal("a nil Tokenizer must tokenize under the empty key")
	}
}

func BenchmarkTokenizer(b *testing.B) {
	tz := NewTokenizer([]byte("hinscore demo patient key"))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tz.Token("NORTHSTAR", "MRN0012345")
		}
	})
}
