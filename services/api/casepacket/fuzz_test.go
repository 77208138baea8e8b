package casepacket

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

// FuzzVerify: whatever the bytes, Verify returns a packet's report or one
// of its errors, never panics, and never verifies bytes other than a
// packet's.
func FuzzVerify(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	var buf bytes.Buffer
	if err := Write(&buf, testFiles(), Manifest{Responder: "org-1", Period: "2026-11"}, key, testAt); err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:1024])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Verify(data, key.Public().(ed25519.PublicKey))
		if err == nil {
			if rep.Manifest.Format != Format || len(rep.Manifest.Files)+2 != rep.Members {
				t.Fatalf("verified %d bytes: %+v", len(data), rep.Manifest)
			}
			return
		}
		if !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrChanged) && !errors.Is(err, ErrWrongKey) {
			t.Fatalf("an error of no kind: %v", err)
		}
	})
}
