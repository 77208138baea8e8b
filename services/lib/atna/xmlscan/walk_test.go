package xmlscan

import (
	"errors"
	"testing"
)

// counter is a Handler that counts elements and text, and fails at an
// element named "stop" with its own error.
type counter struct{ starts, ends, texts int }

var errStop = errors.New("stop")

func (c *counter) Start(w *Walker, name []byte, _ []Attr) error {
	c.starts++
	if string(Local(name)) == "stop" {
		return w.Fail("test", errStop, "stopped at depth %d", w.Depth())
	}
	return nil
}

func (c *counter) End(*Walker, []byte) error  { c.ends++; return nil }
func (c *counter) Text(*Walker, []byte) error { c.texts++; return nil }
func newWalker() Walker                       { return Walker{Limits: Limits{Depth: 4, Name: 8, Value: 8}} }

// TestWalk: a document's elements reach the Handler; each refusal the
// Walker makes is a *ParseError with the caller's sentinel, a Handler's
// own *ParseError comes back as it is.
func TestWalk(t *testing.T) {
	w := newWalker()
	var c counter
	if err := w.Walk([]byte(" <a><b x='1'>t</b><c/></a>\n"), &c); err != nil || c.starts != 3 || c.ends != 3 || c.texts != 1 {
		t.Fatalf("%v %+v", err, c)
	}
	own := errors.New("own sentinel")
	cases := []struct {
		in   string
		want error
	}{
		{"<a><b><c><d><e/></d></c></b></a>", ErrTooDeep},
		{"<abcdefghi/>", ErrTooLarge},
		{"<a x='123456789'/>", ErrTooLarge},
		{"<!DOCTYPE a><a/>", ErrDecl},
		{"<a></b>", nil},
		{"<a/><b/>", nil},
		{"t<a/>", nil},
		{"<a>", nil},
		{"<a><stop/></a>", errStop},
	}
	for _, tc := range cases {
		w := newWalker()
		err := w.Walk([]byte(tc.in), &counter{})
		pe := w.Wrap("test", err, map[error]error{ErrDecl: own, ErrTooDeep: own, ErrTooLarge: own})
		wantErr := own
		if tc.want == nil {
			wantErr = nil
		} else if tc.want == errStop {
			wantErr = errStop
		}
		if err == nil || pe.Prefix != "test" || pe.Err != wantErr || pe.Offset < 0 || pe.Offset > int64(len(tc.in)) {
			t.Errorf("%q: %v → %+v", tc.in, err, pe)
		}
	}
}
