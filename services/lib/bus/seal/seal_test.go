package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/service"
)

const (
	testKeyA = "a:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	testKeyB = "b:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
)

func TestSealOpen(t *testing.T) {
	a := MustParseRawKeys(testKeyA)
	plain := []byte("MSH|^~\\&|EHR|HOSP_A|...\rPID|1||MRN42^^^HOSP_A||DOE^JANE\r")
	sealed := a.Seal("ev-1", plain)
	if bytes.Contains(sealed, []byte("MRN42")) || bytes.Contains(sealed, []byte("DOE")) {
		t.Fatal("the sealed bytes show the identifiers")
	}
	if again := a.Seal("ev-1", plain); bytes.Equal(again, sealed) {
		t.Error("two seals of the same bytes are equal: the nonce is not fresh")
	}
	got, err := a.Open("ev-1", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Rotation: the new key seals, the old one still opens what it sealed.
	ba := MustParseRawKeys(testKeyB + "," + testKeyA)
	if ba.ID() != "b" {
		t.Errorf("sealing key %q, want the first, b", ba.ID())
	}
	if got, err := ba.Open("ev-1", sealed); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("after rotation: Open = %q, %v", got, err)
	}
	if _, err := a.Open("ev-1", ba.Seal("ev-1", plain)); !errors.Is(err, ErrRawKeyUnknown) {
		t.Errorf("sealed with a key not held: %v, want ErrRawKeyUnknown", err)
	}
	// Another event's id, a flipped byte, a cut: nothing opens.
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-20] ^= 1
	for name, c := range map[string]struct {
		id   string
		data []byte
	}{
		"another event": {"ev-2", sealed},
		"flipped byte":  {"ev-1", flipped},
		"cut":           {"ev-1", sealed[:len(sealed)-1]},
		"header only":   {"ev-1", sealed[:4]},
		"empty":         {"ev-1", nil},
		"other version": {"ev-1", append([]byte{2}, sealed[1:]...)},
		"id too long":   {"ev-1", []byte{1, 200, 'a'}},
	} {
		if got, err := a.Open(c.id, c.data); err == nil || got != nil {
			t.Errorf("%s: Open = %q, %v; want an error", name, got, err)
		}
	}
	if !MustParseRawKeys(DevRawKeys).IsDev() || a.IsDev() {
		t.Error("IsDev")
	}
}

func TestParseRawKeys(t *testing.T) {
	for _, bad := range []string{
		"", "a", "a:", "a:00", ":" + strings.Repeat("00", 32), "a b:" + strings.Repeat("00", 32),
		"a:" + strings.Repeat("zz", 32), "a:" + strings.Repeat("00", 31), "a:" + strings.Repeat("00", 33),
		testKeyA + "," + testKeyA, testKeyA + ",",
	} {
		_, err := ParseRawKeys(bad)
		if err == nil {
			t.Errorf("ParseRawKeys(%q) accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "0102030405") {
			t.Errorf("ParseRawKeys(%q): the error shows the key: %v", bad, err)
		}
	}
	if k, err := ParseRawKeys(" " + testKeyA + " , " + testKeyB); err != nil || k.ID() != "a" {
		t.Errorf("two keys: %v", err)
	}
}

func BenchmarkSeal(b *testing.B) {
	k := MustParseRawKeys(testKeyA)
	plain := bytes.Repeat([]byte("x"), 1000)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		_ = k.Seal("1e0d3234-119b-5533-b721-0de36d083f5e", plain)
	}
}

// TestKeysDefaultIsTheDevKey: the default of HINSCORE_RAW_KEYS is the
// development key the services warn about, the hash its comment names.
func TestKeysDefaultIsTheDevKey(t *testing.T) {
	sum := sha256.Sum256([]byte("hinscore-dev-raw-key-not-secret"))
	if want := "dev:" + hex.EncodeToString(sum[:]); DevRawKeys != want {
		t.Fatalf("DevRawKeys = %s, want %s", DevRawKeys, want)
	}
	var k Keys
	if err := service.Load(service.MapEnv(nil), &k); err != nil || !k.RawKeys.IsDev() {
		t.Fatalf("unset: %v, %v", k.RawKeys, err)
	}
	if s := service.Describe(Keys{}); len(s) != 1 || s[0].Name != EnvRawKeys || s[0].Default != DevRawKeys {
		t.Fatalf("declared %+v, want %s defaulting to DevRawKeys", s, EnvRawKeys)
	}
	err := service.Load(service.MapEnv(map[string]string{EnvRawKeys: "k1:short"}), &k)
	if err == nil || !strings.Contains(err.Error(), "HINSCORE_RAW_KEYS: seal.ParseRawKeys") {
		t.Fatalf("bad keys: %v", err)
	}
}

// TestMarshalEventKeepsWordsSealed: an event on EVENTS carries its
// original sealed and not the sender's words beside it; the caller's event
// is left as it was.
func TestMarshalEventKeepsWordsSealed(t *testing.T) {
	a := MustParseRawKeys(testKeyA)
	raw := []byte("MSH|^~\\&|EHR|HOSP_A|||20261207||ACK|1|P|2.5\rMSA|AR|9\rERR|||207|E||||Patient DOE JANE born 19700101 refused\r")
	ev := &hinscorev1.ExchangeEvent{EventId: "ev-1", ReasonText: "Patient DOE JANE born 19700101 refused", ReasonCodes: []string{"err|207"}}
	b, err := MarshalEvent(ev, a, raw)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("DOE JANE")) {
		t.Fatal("the sender's words travel unsealed beside the sealed original")
	}
	var got hinscorev1.ExchangeEvent
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ReasonText != "" || strings.Join(got.ReasonCodes, ",") != "err|207" {
		t.Errorf("on the bus: words %q, codes %q", got.ReasonText, got.ReasonCodes)
	}
	if plain, err := a.Open("ev-1", got.RawSealed); err != nil || !bytes.Contains(plain, []byte("DOE JANE")) {
		t.Errorf("the sealed original: %q, %v", plain, err)
	}
	if ev.ReasonText == "" || ev.RawSealed != nil {
		t.Error("the caller's event was changed")
	}
}
