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
