package casepacket

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

var testAt = time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC)

func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testFiles() []File {
	return []File{
		{Name: "summary.json", Data: []byte(`{"violation_units": 3}` + "\n")},
		{Name: "chains/1.json", Data: bytes.Repeat([]byte("chain "), 100)},
		{Name: "originals/1/01-request.hl7", Data: []byte("MSH|^~\\&|A|B|C|D|20261201||QBP^Q22|c1|P|2.5\r")},
		{Name: "empty.txt", Data: nil},
		{Name: "queries/01.json", Data: bytes.Repeat([]byte{'q'}, blockSize)}, // exactly one block: no padding
	}
}

func writePacket(t *testing.T, files []File, key ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	m := Manifest{Responder: "org-1", Period: "2026-11", GeneratedBy: "ivy"}
	if err := Write(&buf, files, m, key, testAt); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFreshPacketVerifies(t *testing.T) {
	key := testKey(t)
	archive := writePacket(t, testFiles(), key)
	rep, err := Verify(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Members != len(testFiles())+2 || rep.Manifest.Responder != "org-1" || len(rep.Manifest.Files) != len(testFiles()) ||
		rep.Manifest.Format != Format || rep.Manifest.PublicKey != PublicKeyString(key.Public().(ed25519.PublicKey)) {
		t.Fatalf("report %+v", rep)
	}
	if _, err := Verify(archive, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("with its own public key: %v", err)
	}
	var summary struct {
		Units int `json:"violation_units"`
	}
	if err := rep.ReadJSON("summary.json", &summary); err != nil || summary.Units != 3 {
		t.Fatalf("summary.json: %+v %v", summary, err)
	}
	if err := rep.ReadJSON("chains/1.json", &summary); err == nil {
		t.Fatal("a member that is not JSON decodes")
	}
	if err := rep.ReadJSON("none.json", &summary); err == nil {
		t.Fatal("a member that is not there decodes")
	}
	// Any tar reader takes it apart.
	tr := tar.NewReader(bytes.NewReader(archive))
	n := 0
	for {
		if _, err := tr.Next(); err != nil {
			break
		}
		n++
	}
	if n != rep.Members {
		t.Fatalf("tar reads %d members, Verify %d", n, rep.Members)
	}
}

// TestEveryByteFlipIsCaught flips every byte of a packet (three ways: the
// low bit, the bit that turns a space into a NUL, all bits) and checks
// that Verify fails naming the member the byte belongs to (its header,
// content or padding), or says the archive is unreadable.
func TestEveryByteFlipIsCaught(t *testing.T) {
	key := testKey(t)
	archive := writePacket(t, testFiles(), key)
	members, err := readMembers(archive)
	if err != nil {
		t.Fatal(err)
	}
	owner := func(at int) (name string, inHeader bool) {
		for _, m := range members {
			if int64(at) >= m.offset && int64(at) < m.offset+blockSize+padded(int64(len(m.data))) {
				return m.name, int64(at) < m.offset+blockSize
			}
		}
		return "", false // the end of the archive
	}
	counts := map[string]int{}
	for at := range archive {
		for _, mask := range []byte{0x01, 0x20, 0xff} {
			archive[at] ^= mask
			_, err := Verify(archive, nil)
			archive[at] ^= mask
			name, inHeader := owner(at)
			var ce *ChangedError
			switch {
			case err == nil:
				t.Fatalf("byte %d ^ %#x (%s): verifies", at, mask, name)
			case errors.As(err, &ce) && ce.File == name:
				counts["named"]++
			case errors.Is(err, ErrUnreadable) && (inHeader || name == ""):
				counts["unreadable"]++
			default:
				t.Fatalf("byte %d ^ %#x in %q (header %v): %v", at, mask, name, inHeader, err)
			}
		}
	}
	t.Logf("%d bytes, %d flips: %v", len(archive), 3*len(archive), counts)
}

func TestMembersAddedRemovedAndDuplicated(t *testing.T) {
	key := testKey(t)
	files := testFiles()
	archive := writePacket(t, files, key)
	members, err := readMembers(archive)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(edit func([]File) []File) []byte {
		var all []File
		for _, m := range members {
			all = append(all, File{Name: m.name, Data: m.data})
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range edit(all) {
			if err := writeMember(tw, f, testAt); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	cases := []struct {
		name, file, why string
		edit            func([]File) []File
	}{
		{"added", "extra.txt", "added", func(fs []File) []File { return append([]File{{Name: "extra.txt", Data: []byte("x")}}, fs...) }},
		{"removed", "chains/1.json", "removed", func(fs []File) []File { return append(fs[:1:1], fs[2:]...) }},
		{"duplicated", "summary.json", "second member", func(fs []File) []File { return append(fs, fs[0]) }},
		{"manifest removed", ManifestName, "removed", func(fs []File) []File { return fs[:len(fs)-2] }},
		{"signature removed", SignatureName, "removed", func(fs []File) []File { return fs[:len(fs)-1] }},
	}
	for _, c := range cases {
		_, err := Verify(rewrite(c.edit), nil)
		var ce *ChangedError
		if !errors.As(err, &ce) || ce.File != c.file || !strings.Contains(ce.Why, c.why) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestWrongPublicKey(t *testing.T) {
	archive := writePacket(t, testFiles(), testKey(t))
	other := testKey(t).Public().(ed25519.PublicKey)
	if _, err := Verify(archive, other); !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), PublicKeyString(other)) {
		t.Fatalf("another key: %v", err)
	}
	// Signed again with another key, naming it: the given key still fails it.
	mine := testKey(t)
	if _, err := Verify(writePacket(t, testFiles(), testKey(t)), mine.Public().(ed25519.PublicKey)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("a packet of another signer: %v", err)
	}
}

func TestUnreadableArchives(t *testing.T) {
	archive := writePacket(t, testFiles(), testKey(t))
	for name, data := range map[string][]byte{
		"empty":     nil,
		"truncated": archive[:len(archive)/2],
		"not tar":   []byte(strings.Repeat("not a tar archive ", 100)),
		"trailing":  append(append([]byte{}, archive...), 'x'),
	} {
		if _, err := Verify(data, nil); err == nil {
			t.Errorf("%s: verifies", name)
		} else if !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrChanged) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestWriteRefusesBadMembers(t *testing.T) {
	key := testKey(t)
	for _, name := range []string{"", "/abs", "../up", "a/../b", "a b", "manifest.json", "manifest.sig", strings.Repeat("x", 201), "tab\tname"} {
		err := Write(&bytes.Buffer{}, []File{{Name: name}}, Manifest{}, key, testAt)
		if !errors.Is(err, ErrBadMember) {
			t.Errorf("%q: %v", name, err)
		}
	}
	if err := Write(&bytes.Buffer{}, []File{{Name: "a"}, {Name: "a"}}, Manifest{}, key, testAt); !errors.Is(err, ErrBadMember) {
		t.Errorf("duplicate: %v", err)
	}
	if err := Write(&bytes.Buffer{}, nil, Manifest{}, nil, testAt); err == nil {
		t.Error("no key: written")
	}
}

func TestKeys(t *testing.T) {
	k := NewPrivateKey(testKey(t))
	pemKey, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	seed := []byte("  " + strings.TrimSpace(string(must64(k.Ed25519().Seed()))) + "\n")
	for name, text := range map[string][]byte{"pem": pemKey, "seed": seed} {
		var got PrivateKey
		if err := got.UnmarshalText(text); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Public() != k.Public() {
			t.Fatalf("%s: another key", name)
		}
	}
	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQ=" // 21 bytes: not a seed
	for name, text := range map[string]string{"garbage": "not a key", "short seed": secret,
		"pem not pkcs8": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		var got PrivateKey
		err := got.UnmarshalText([]byte(text))
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := (SigningKey{}).Require(); err == nil || !strings.Contains(err.Error(), EnvSigningKeyFile) {
		t.Errorf("no key: %v", err)
	}
	if _, err := ParsePublicKey(k.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePublicKey("AAAA"); err == nil {
		t.Error("a short public key parses")
	}
}

func must64(b []byte) []byte { return []byte(PublicKeyString(b)) }

// TestContradictedException: only a refusal citing an exception, for a
// purpose that requires a response, whose check flagged it, is counted
// apart; nothing else, and never a unit by itself.
func TestContradictedException(t *testing.T) {
	cases := []struct {
		class, purpose string
		flagged, want  bool
	}{
		{"refused_exception", "treatment", true, true},
		{"refused_exception", "individual_access", true, true},
		{"refused_exception", "treatment", false, false},
		{"refused_exception", "payment", true, false},
		{"refused_exception", "unknown", true, false},
		{"refused_unjustified", "treatment", true, false},
		{"fulfilled", "treatment", true, false},
		{"not a class", "treatment", true, false},
	}
	for _, c := range cases {
		if got := ContradictedException(c.class, c.purpose, c.flagged); got != c.want {
			t.Errorf("%s/%s flagged %v: %v", c.class, c.purpose, c.flagged, got)
		}
		if c.want && ViolationUnit(c.class, c.purpose) {
			t.Errorf("%s/%s: also a violation unit", c.class, c.purpose)
		}
	}
}

func TestViolationUnit(t *testing.T) {
	cases := []struct {
		class, purpose string
		want           bool
	}{
		{"refused_unjustified", "treatment", true},
		{"unanswered", "individual_access", true},
		{"refused_unjustified", "payment", false},
		{"unanswered", "unknown", false},
		{"refused_exception", "treatment", false},
		{"redirected", "treatment", false},
		{"fulfilled", "treatment", false},
		{"error_transient", "individual_access", false},
		{"not a class", "treatment", false},
		{"unanswered", "not a purpose", false},
	}
	for _, c := range cases {
		if got := ViolationUnit(c.class, c.purpose); got != c.want {
			t.Errorf("%s/%s: %v", c.class, c.purpose, got)
		}
	}
}
