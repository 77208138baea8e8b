package fhirmap

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// A fast path in front of encoding/json for this package's structs.
// encoding/json first scans the whole input for validity, then decodes it
// through a byte-at-a-time state machine: on a Task that is most of the
// mapping's cost. fastDecode decodes the plain case in one pass: every
// value validated, the fields we read decoded, the rest skipped. Whenever
// it meets anything where it is not certain to decode exactly as
// encoding/json does (an escape in a string it keeps, invalid UTF-8, null,
// a key matched only by case folding or repeated, a JSON type other than
// the field's, deep nesting, bad syntax), it gives up and decode uses
// encoding/json, which also reports errors precisely. FuzzFastDecode holds
// the two to the same result.

// fastDecoder decodes one value into v; false means "give up".
type fastDecoder func(s *fastScanner, v reflect.Value) bool

// fastMaxDepth bounds nesting on the fast path (encoding/json allows 10000:
// deeper input is left to it).
const fastMaxDepth = 256

// fastDecoders holds a decoder for each struct decode() is given whose
// fields are all of kinds this file reads (a struct that gains another kind
// simply goes to encoding/json; TestFastDecodeExamples notices). Built at
// init and only read afterwards.
var fastDecoders = func() map[reflect.Type]fastDecoder {
	b := fastBuilder{built: map[reflect.Type]fastDecoder{}}
	top := map[reflect.Type]fastDecoder{}
	for _, v := range []any{head{}, bundle{}, task{}, messageHeader{}, auditEvent{}, operationOutcome{}} {
		if t := reflect.TypeOf(v); fastSupported(t, map[reflect.Type]bool{}) {
			top[t] = b.of(t)
		}
	}
	return top
}()

// fastSupported reports whether the builder handles t: strings, bools,
// *uint32, json.RawMessage, and structs (with plain json tags, at most 64
// fields, no two alike but for case), pointers to them and slices of any of
// these.
func fastSupported(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	switch {
	case t == rawMessageType, t.Kind() == reflect.String, t.Kind() == reflect.Bool:
		return true
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Uint32:
		return true
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct, t.Kind() == reflect.Slice:
		return fastSupported(t.Elem(), seen)
	case t.Kind() == reflect.Struct:
		names := map[string]bool{}
		var ok func(t reflect.Type) bool
		ok = func(t reflect.Type) bool {
			for i := 0; i < t.NumField(); i++ {
				sf := t.Field(i)
				if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
					if !ok(sf.Type) {
						return false
					}
					continue
				}
				name := sf.Tag.Get("json")
				if !sf.IsExported() || name == "" || strings.ContainsAny(name, ",-") || names[strings.ToLower(name)] || !fastSupported(sf.Type, seen) {
					return false
				}
				names[strings.ToLower(name)] = true
			}
			return true
		}
		return ok(t) && len(names) <= 64
	}
	return false
}

// fastDecode decodes data into v (a pointer to a zero struct) and reports
// whether it did; on false v may hold part of the input.
func fastDecode(data []byte, v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	dec, ok := fastDecoders[rv.Type().Elem()]
	if !ok {
		return false
	}
	s := fastScanner{b: data}
	s.space()
	if !dec(&s, rv.Elem()) {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

type fastBuilder struct{ built map[reflect.Type]fastDecoder }

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

// of returns the decoder of t, a type fastSupported accepts.
func (b *fastBuilder) of(t reflect.Type) fastDecoder {
	if d, ok := b.built[t]; ok {
		return d
	}
	var d fastDecoder
	switch {
	case t == rawMessageType:
		d = decodeRaw
	case t.Kind() == reflect.String:
		d = decodeString
	case t.Kind() == reflect.Bool:
		d = decodeBool
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Uint32:
		d = decodeUint32Ptr
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		var elem fastDecoder
		d = func(s *fastScanner, v reflect.Value) bool {
			p := reflect.New(t.Elem())
			if !elem(s, p.Elem()) {
				return false
			}
			v.Set(p)
			return true
		}
		b.built[t] = d
		elem = b.of(t.Elem())
	case t.Kind() == reflect.Slice:
		var elem fastDecoder
		d = func(s *fastScanner, v reflect.Value) bool { return decodeSlice(s, v, elem) }
		b.built[t] = d
		elem = b.of(t.Elem())
	case t.Kind() == reflect.Struct:
		sd := &structDecoder{}
		d = sd.decode
		b.built[t] = d
		sd.fields = b.fields(t, nil)
	default:
		panic(fmt.Sprintf("fhirmap: no fast decoder for %s (fastSupported should have said so)", t))
	}
	b.built[t] = d
	return d
}

// fields lists the JSON fields of t, those of embedded structs promoted.
func (b *fastBuilder) fields(t reflect.Type, index []int) []fastField {
	var fs []fastField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			fs = append(fs, b.fields(sf.Type, idx)...)
			continue
		}
		fs = append(fs, fastField{name: sf.Tag.Get("json"), index: idx, dec: b.of(sf.Type)})
	}
	return fs
}

type fastField struct {
	name  string
	index []int
	dec   fastDecoder
}

type structDecoder struct{ fields []fastField }

func (sd *structDecoder) decode(s *fastScanner, v reflect.Value) bool {
	var seen uint64
	return s.object(true, func(key []byte) bool {
		f := -1
		for j := range sd.fields {
			if sd.fields[j].name == string(key) {
				f = j
				break
			}
		}
		switch {
		case f >= 0:
			if seen&(1<<f) != 0 {
				return false // a repeated key: encoding/json merges, we do not
			}
			seen |= 1 << f
			return sd.fields[f].dec(s, fieldByIndex(v, sd.fields[f].index))
		case sd.folds(key):
			return false // encoding/json would decode it into a field
		}
		return s.skip()
	})
}

func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for _, i := range index {
		v = v.Field(i)
	}
	return v
}

// folds reports whether key could match a field other than exactly: by
// case (encoding/json matches keys case-insensitively), or by Unicode
// folding, which a key with non-ASCII bytes might.
func (sd *structDecoder) folds(key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	for _, f := range sd.fields {
		if len(f.name) == len(key) && asciiEqualFold(f.name, key) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a string, b []byte) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func decodeString(s *fastScanner, v reflect.Value) bool {
	b, ok := s.plainString()
	if !ok {
		return false
	}
	v.SetString(string(b))
	return true
}

func decodeBool(s *fastScanner, v reflect.Value) bool {
	switch {
	case s.literal("true"):
		v.SetBool(true)
	case s.literal("false"):
		v.SetBool(false)
	default:
		return false
	}
	return true
}

// decodeUint32Ptr reads digits only: anything else encoding/json either
// refuses for an integer or is not JSON.
func decodeUint32Ptr(s *fastScanner, v reflect.Value) bool {
	start := s.i
	var n uint64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		n = n*10 + uint64(s.b[s.i]-'0')
		if n > 1<<32-1 {
			return false
		}
		s.i++
	}
	digits := s.i - start
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
		return false
	}
	if c := s.peek(); c == '.' || c == 'e' || c == 'E' {
		return false
	}
	u := uint32(n)
	v.Set(reflect.ValueOf(&u))
	return true
}

// decodeRaw keeps a copy of the value's bytes, as json.RawMessage does.
func decodeRaw(s *fastScanner, v reflect.Value) bool {
	start := s.i
	if s.peek() == 'n' || !s.skip() {
		return false // null: left to encoding/json
	}
	v.SetBytes(append([]byte(nil), s.b[start:s.i]...))
	return true
}

func decodeSlice(s *fastScanner, v reflect.Value, elem fastDecoder) bool {
	out := reflect.MakeSlice(v.Type(), 0, 0) // [] is an empty slice, not nil
	ok := s.array(func() bool {
		out = reflect.Append(out, reflect.Zero(v.Type().Elem()))
		return elem(s, out.Index(out.Len()-1))
	})
	if ok {
		v.Set(out)
	}
	return ok
}

// fastScanner reads JSON; every method that moves past a value has
// validated it.
type fastScanner struct {
	b     []byte
	i     int
	depth int
}

func (s *fastScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *fastScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *fastScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// plainString reads a string without escapes, of valid UTF-8: its bytes
// are then exactly what encoding/json decodes it to.
func (s *fastScanner) plainString() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// object reads an object, calling member with each key and the scanner at
// its value, which member must read. plainKeys: keys are read by
// plainString (member needs them), else only validated (member gets nil).
func (s *fastScanner) object(plainKeys bool, member func(key []byte) bool) bool {
	more, ok := s.open('{', '}')
	defer s.leave()
	for ok && more {
		s.space()
		var key []byte
		if plainKeys {
			key, ok = s.plainString()
		} else {
			ok = s.skipString()
		}
		s.space()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		s.space()
		if !member(key) {
			return false
		}
		more, ok = s.next('}')
	}
	return ok
}

// array reads an array, calling elem with the scanner at each element.
func (s *fastScanner) array(elem func() bool) bool {
	more, ok := s.open('[', ']')
	defer s.leave()
	for ok && more {
		s.space()
		if !elem() {
			return false
		}
		more, ok = s.next(']')
	}
	return ok
}

// open enters an object or array; more is false when it is empty (and
// read). The caller defers leave either way.
func (s *fastScanner) open(open, close byte) (more, ok bool) {
	if s.peek() != open || s.depth >= fastMaxDepth {
		s.depth++
		return false, false
	}
	s.i++
	s.depth++
	s.space()
	if s.peek() == close {
		s.i++
		return false, true
	}
	return true, true
}

// next reads what follows a member or element: a comma (more) or close.
func (s *fastScanner) next(close byte) (more, ok bool) {
	s.space()
	switch s.peek() {
	case ',':
		s.i++
		return true, true
	case close:
		s.i++
		return false, true
	}
	return false, false
}

func (s *fastScanner) leave() { s.depth-- }

// skip moves past one value of any type, validating it as encoding/json's
// scanner does (invalid UTF-8 inside a string is valid there).
func (s *fastScanner) skip() bool {
	switch c := s.peek(); {
	case c == '"':
		return s.skipString()
	case c == '{':
		return s.object(false, func([]byte) bool { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.skipNumber()
	}
	return false
}

func (s *fastScanner) skipString() bool {
	if s.peek() != '"' {
		return false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(s.b[k]) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *fastScanner) skipNumber() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
