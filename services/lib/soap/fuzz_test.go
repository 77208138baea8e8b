package soap

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input panics, every refusal is a *ParseError (or, for a
// package, ErrMIME), and whatever parses has a body.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Envelope("", data, 1<<20)
		if err != nil {
			var pe *ParseError
			if !errors.Is(err, ErrMIME) && !errors.As(err, &pe) {
				t.Fatalf("Envelope: %v", err)
			}
			return
		}
		m, err := Parse(env, 1<<20)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("not a *ParseError: %v", err)
			}
			return
		}
		if m.Body == "" || (m.Version != "1.1" && m.Version != "1.2") {
			t.Fatalf("parsed without a body or version: %+v", m)
		}
	})
}
