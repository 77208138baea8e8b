package xmlscan

import (
	"errors"
	"strings"
	"testing"
)

// TestTokens reads a small document and writes its tokens out in a
// compact form: the qualified and local names of attributes, empty
// elements, decoded text and CDATA, comments and PIs skipped.
func TestTokens(t *testing.T) {
	in := "\xef\xbb\xbf<?xml version=\"1.0\"?><s:E xmlns:s='urn:x' a = \"1&amp;2\"><!-- c --><b/>t&#x41;<![CDATA[<c>]]></s:E>"
	var s Scanner
	s.Reset([]byte(in))
	var got []string
	for {
		tok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if tok == EOF {
			break
		}
		switch tok {
		case Start:
			line := "<" + string(s.Name)
			for _, a := range s.Attrs {
				line += " " + string(a.Name) + "(" + string(a.Local) + ")=" + string(a.Value)
			}
			if s.Empty {
				line += "/"
			}
			got = append(got, line+">")
		case End:
			got = append(got, "</"+string(s.Name)+">")
		case Text:
			got = append(got, string(s.Text))
		}
	}
	want := "<s:E xmlns:s(s)=urn:x a(a)=1&2>|<b/>|tA|<c>|</s:E>"
	if strings.Join(got, "|") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, "|"), want)
	}
}

// TestRefused: a declaration stops the scanner before anything in it is
// read; an undefined entity, bad characters and broken tags are *Error
// with the offset.
func TestRefused(t *testing.T) {
	var s Scanner
	s.Reset([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`))
	if tok, err := s.Next(); tok != Decl || err != nil || !strings.HasPrefix(string(s.Rest()), "<!DOCTYPE") {
		t.Errorf("DOCTYPE: %v %v", tok, err)
	}
	for _, in := range []string{"<x>&a;</x>", "<x a=1/>", "<x", "<!-- x"} {
		s.Reset([]byte(in))
		var err error
		for err == nil {
			var tok Token
			if tok, err = s.Next(); tok == EOF && err == nil {
				break
			}
		}
		var se *Error
		if !errors.As(err, &se) || se.At < 0 || se.At > len(in) {
			t.Errorf("%q: %v", in, err)
		}
	}
	if err := CheckChars([]byte("a\x01")); err == nil {
		t.Error("control character accepted")
	}
}

// TestCheckChars: a refused control character is found at its offset in
// any position of an eight-byte word and in the tail; line breaks, tabs
// and multi-byte characters pass; invalid UTF-8 does not.
func TestCheckChars(t *testing.T) {
	base := []byte("<a>\tline\r\nzwölf € 𝄞</a>\n" + strings.Repeat("x", 17))
	if err := CheckChars(base); err != nil {
		t.Fatalf("valid input refused: %v", err)
	}
	for i := range base {
		in := append([]byte{}, base...)
		in[i] = 0x01
		var se *Error
		if err := CheckChars(in); !errors.As(err, &se) || se.At != i {
			// A multi-byte character cut by the 0x01 is invalid UTF-8
			// only after the control character is found, so At is i.
			t.Errorf("0x01 at %d: %v", i, err)
		}
	}
	if err := CheckChars([]byte("<a>\xc3\x28</a>")); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}
