package xmlscan

import (
	"bytes"
	"errors"
	"fmt"
)

// Sentinels of the Walker's refusals, in Error.Err.
var (
	ErrDecl     = errors.New("xmlscan: markup declaration")
	ErrTooDeep  = errors.New("xmlscan: nesting too deep")
	ErrTooLarge = errors.New("xmlscan: too large")
)

// Limits bound what one document may hold.
type Limits struct {
	Depth int // levels of elements
	Name  int // bytes of an element or attribute name
	Value int // bytes of an attribute value
}

// Handler receives a document's elements from a Walker. Start is called
// with the element already on the stack (Walker.Depth counts it), End
// before it leaves; Text only inside the root element. An error stops the
// walk and is returned as it is.
type Handler interface {
	Start(w *Walker, name []byte, attrs []Attr) error
	End(w *Walker, name []byte) error
	Text(w *Walker, text []byte) error
}

// Walker reads one well-formed document, holding what every reader of
// untrusted XML checks: a markup declaration is refused (never
// expanded), nesting and sizes are bounded, end tags match their start
// tags, there is one root element and no text outside it.
type Walker struct {
	Scanner
	Limits   Limits
	stack    [][]byte // qualified names of the open elements
	rootDone bool
}

// Depth is the number of open elements.
func (w *Walker) Depth() int { return len(w.stack) }

// Element is the local name of the innermost open element, "" outside the
// root.
func (w *Walker) Element() string {
	if n := len(w.stack); n > 0 {
		return string(Local(w.stack[n-1]))
	}
	return ""
}

// Errorf is an *Error at the current position.
func (w *Walker) Errorf(err error, format string, args ...any) *Error {
	return &Error{At: w.pos, Reason: fmt.Sprintf(format, args...), Err: err}
}

// Walk reads data (after CheckChars) to its end.
func (w *Walker) Walk(data []byte, h Handler) error {
	if err := CheckChars(data); err != nil {
		return err
	}
	w.Reset(data)
	if w.stack == nil {
		w.stack = make([][]byte, 0, 8)
	}
	w.stack, w.rootDone = w.stack[:0], false
	for {
		tok, err := w.Next()
		if err != nil {
			return err
		}
		switch tok {
		case EOF:
			if !w.rootDone {
				return w.Errorf(nil, "input ends before the root element is closed")
			}
			return nil
		case Start:
			if err := w.start(h); err != nil {
				return err
			}
			if w.Empty {
				if err := w.end(h, w.Name); err != nil {
					return err
				}
			}
		case End:
			if err := w.end(h, w.Name); err != nil {
				return err
			}
		case Text:
			if len(w.stack) == 0 {
				if len(bytes.TrimSpace(w.Text)) > 0 {
					return w.Errorf(nil, "text outside the root element")
				}
				continue
			}
			if err := h.Text(w, w.Text); err != nil {
				return err
			}
		case Decl:
			rest := w.Rest()[2:]
			return w.Errorf(ErrDecl, "markup declaration <!%s", rest[:min(len(rest), 20)])
		}
	}
}

func (w *Walker) start(h Handler) error {
	name, attrs, l := w.Name, w.Attrs, w.Limits
	if w.rootDone {
		return w.Errorf(nil, "element <%s> after the root element", name)
	}
	if len(w.stack) >= l.Depth {
		return w.Errorf(ErrTooDeep, "more than %d levels", l.Depth)
	}
	if len(name) > l.Name {
		return w.Errorf(ErrTooLarge, "element name over %d bytes", l.Name)
	}
	for _, at := range attrs {
		if len(at.Name) > l.Name {
			return w.Errorf(ErrTooLarge, "attribute name over %d bytes", l.Name)
		}
		if len(at.Value) > l.Value {
			return w.Errorf(ErrTooLarge, "attribute %s over %d bytes", at.Local, l.Value)
		}
	}
	w.stack = append(w.stack, name)
	return h.Start(w, name, attrs)
}

func (w *Walker) end(h Handler, name []byte) error {
	n := len(w.stack)
	if n == 0 {
		return w.Errorf(nil, "end tag </%s> without a start", name)
	}
	if !bytes.Equal(w.stack[n-1], name) {
		return w.Errorf(nil, "end tag </%s> closes <%s>", name, w.stack[n-1])
	}
	if err := h.End(w, name); err != nil {
		return err
	}
	w.stack = w.stack[:n-1]
	if n == 1 {
		w.rootDone = true
	}
	return nil
}

// Release drops what the Walker holds of the last input (the input, the
// open elements' names, the last token), keeping its buffers' capacity,
// so that a Walker kept for reuse does not keep an input alive.
func (w *Walker) Release() {
	clear(w.stack[:cap(w.stack)])
	w.stack = w.stack[:0]
	clear(w.Attrs[:cap(w.Attrs)])
	w.Attrs = w.Attrs[:0]
	w.data, w.pos, w.Name, w.Text = nil, 0, nil, nil
}

// Ancestor is the local name of the open element n levels above the
// innermost (0: the innermost itself), nil when there is none.
func (w *Walker) Ancestor(n int) []byte {
	if i := len(w.stack) - 1 - n; i >= 0 && n >= 0 {
		return Local(w.stack[i])
	}
	return nil
}

// ParseError says what is wrong with a document and where. The packages
// that read documents with a Walker return it under their own names
// (atna.ParseError, soap.ParseError), with their own sentinels in Err.
type ParseError struct {
	Prefix  string // the package that read the document: "atna", "soap"
	Element string // local name of the element being read, "" outside the root
	Offset  int64  // byte offset in the input
	Reason  string
	Err     error // one of the package's sentinels, or nil for malformed XML
}

func (e *ParseError) Error() string {
	if e.Element == "" {
		return fmt.Sprintf("%s: at byte %d: %s", e.Prefix, e.Offset, e.Reason)
	}
	return fmt.Sprintf("%s: %s at byte %d: %s", e.Prefix, e.Element, e.Offset, e.Reason)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Fail is a *ParseError at the current position, for a Handler.
func (w *Walker) Fail(prefix string, err error, format string, args ...any) *ParseError {
	return &ParseError{Prefix: prefix, Element: w.Element(), Offset: int64(w.pos), Reason: fmt.Sprintf(format, args...), Err: err}
}

// Wrap turns an error of Walk into a *ParseError: a Handler's
// *ParseError as it is, the Walker's own refusals with their sentinels
// mapped through sentinels (the caller's errors for ErrDecl, ErrTooDeep,
// ErrTooLarge).
func (w *Walker) Wrap(prefix string, err error, sentinels map[error]error) *ParseError {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe
	}
	var se *Error
	if errors.As(err, &se) {
		return &ParseError{Prefix: prefix, Element: w.Element(), Offset: int64(se.At), Reason: se.Reason, Err: sentinels[se.Err]}
	}
	return w.Fail(prefix, nil, "%v", err)
}
