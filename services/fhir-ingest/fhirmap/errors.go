package fhirmap

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for the kinds of unusable input; every *Error wraps one.
var (
	// ErrSyntax: the bytes are not JSON, or an element has the wrong JSON type.
	ErrSyntax = errors.New("fhirmap: invalid JSON")
	// ErrNotExchange: a valid resource that is not an exchange event
	// (Patient, DocumentReference, a searchset Bundle ...).
	ErrNotExchange = errors.New("fhirmap: not an exchange event")
	// ErrInvalid: an exchange resource missing or misusing an element the
	// mapping needs.
	ErrInvalid = errors.New("fhirmap: unusable resource")
)

// Error says which element made a resource unusable. Path is FHIRPath-like
// ("Task.status", "Bundle.entry[2].response.status"); IssueCode is the
// OperationOutcome issue code a reply should carry.
type Error struct {
	Path      string
	IssueCode string
	Msg       string
	Err       error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func invalid(path, format string, args ...any) *Error {
	return &Error{Path: path, IssueCode: "required", Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

func badValue(path, format string, args ...any) *Error {
	return &Error{Path: path, IssueCode: "value", Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

func notExchange(path, format string, args ...any) *Error {
	return &Error{Path: path, IssueCode: "not-supported", Msg: fmt.Sprintf(format, args...), Err: ErrNotExchange}
}

// within prefixes the path of an error found in a nested resource.
func within(prefix string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		switch {
		case c.Path == "":
			c.Path = prefix
		case prefix != "":
			// "Task.status" inside "Bundle.entry[1].resource" reads
			// "Bundle.entry[1].resource.status".
			rest := ""
			if i := strings.IndexAny(c.Path, ".["); i >= 0 {
				rest = c.Path[i:]
			}
			c.Path = prefix + rest
		}
		return &c
	}
	return err
}
