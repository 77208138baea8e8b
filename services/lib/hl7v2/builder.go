package hl7v2

// Field is one field of a segment being built: its repetitions, each a list
// of components, each a list of sub-components. Values are escaped when the
// segment is written, except for a Verbatim field.
type Field struct {
	reps     [][][]string
	verbatim []byte
	// A field of one repetition without sub-components, the common case
	// of a reply, is kept as its components (reps is nil) so that building
	// it allocates nothing.
	comps []string
	value string // F's value; comps is nil
	plain bool   // value holds the field
}

// F is a field holding one plain value.
func F(v string) Field { return Field{value: v, plain: true} }

// C is a field of one repetition with the given components.
func C(components ...string) Field { return Field{comps: components} }

// R is a field whose repetitions are the first repetition of each given field.
func R(reps ...Field) Field {
	f := Field{}
	for _, r := range reps {
		if rep := r.firstRep(); rep != nil {
			f.reps = append(f.reps, rep)
		}
	}
	return f
}

// firstRep returns f's first repetition as components of sub-components,
// nil when f has none (a Verbatim field is not split).
func (f Field) firstRep() [][]string {
	switch {
	case f.plain:
		return [][]string{{f.value}}
	case f.comps != nil:
		rep := make([][]string, len(f.comps))
		for i, c := range f.comps {
			rep[i] = []string{c}
		}
		return rep
	case len(f.reps) > 0:
		return f.reps[0]
	}
	return nil
}

// Verbatim is a field copied as it is: already encoded with the builder's
// delimiters (e.g. taken from a message with Raw).
func Verbatim(raw []byte) Field { return Field{verbatim: raw} }

// Builder writes a message with the given delimiters. The zero value is not
// usable; use NewBuilder.
type Builder struct {
	d   Delimiters
	buf []byte
}

// NewBuilder starts a message encoded with d.
func NewBuilder(d Delimiters) *Builder { return &Builder{d: d, buf: make([]byte, 0, 512)} }

// MSH writes the header; fields start at MSH-3 (MSH-1 and MSH-2 come from
// the delimiters).
func (b *Builder) MSH(fields ...Field) *Builder {
	b.buf = append(b.buf, "MSH"...)
	b.buf = append(b.buf, b.d.Field)
	b.buf = append(b.buf, b.d.EncodingCharacters()...)
	return b.fields(fields)
}

// batchHeader writes an FHS or BHS: like MSH, its fields 1 and 2 are the
// delimiters and fields start at 3.
func (b *Builder) batchHeader(name string, fields []Field) *Builder {
	b.buf = append(b.buf, name...)
	b.buf = append(b.buf, b.d.Field)
	b.buf = append(b.buf, b.d.EncodingCharacters()...)
	return b.fields(fields)
}

// Segment writes a segment; fields start at field 1. Trailing empty fields
// are dropped.
func (b *Builder) Segment(name string, fields ...Field) *Builder {
	b.buf = append(b.buf, name...)
	return b.fields(fields)
}

// RawSegment copies an already encoded segment (without terminator).
func (b *Builder) RawSegment(seg []byte) *Builder {
	b.buf = append(b.buf, seg...)
	b.buf = append(b.buf, '\r')
	return b
}

func (b *Builder) fields(fields []Field) *Builder {
	last := len(fields)
	for last > 0 && fields[last-1].empty() {
		last--
	}
	for _, f := range fields[:last] {
		b.buf = append(b.buf, b.d.Field)
		b.buf = f.appendTo(b.buf, b.d)
	}
	b.buf = append(b.buf, '\r')
	return b
}

func (f Field) empty() bool {
	if len(f.verbatim) > 0 || f.value != "" {
		return false
	}
	for _, c := range f.comps {
		if c != "" {
			return false
		}
	}
	for _, r := range f.reps {
		for _, c := range r {
			for _, s := range c {
				if s != "" {
					return false
				}
			}
		}
	}
	return true
}

func (f Field) appendTo(dst []byte, d Delimiters) []byte {
	switch {
	case f.verbatim != nil:
		return append(dst, f.verbatim...)
	case f.plain:
		return d.AppendEscaped(dst, f.value)
	case f.comps != nil:
		// Trailing empty components are dropped, as below.
		n := len(f.comps)
		for n > 1 && f.comps[n-1] == "" {
			n--
		}
		for j, comp := range f.comps[:n] {
			if j > 0 {
				dst = append(dst, d.Component)
			}
			dst = d.AppendEscaped(dst, comp)
		}
		return dst
	}
	for i, rep := range f.reps {
		if i > 0 {
			dst = append(dst, d.Repetition)
		}
		// Trailing empty components are dropped, as senders are told to.
		n := len(rep)
		for n > 1 && allEmpty(rep[n-1]) {
			n--
		}
		for j, comp := range rep[:n] {
			if j > 0 {
				dst = append(dst, d.Component)
			}
			for k, sub := range comp {
				if k > 0 {
					dst = append(dst, d.SubComponent)
				}
				dst = d.AppendEscaped(dst, sub)
			}
		}
	}
	return dst
}

func allEmpty(ss []string) bool {
	for _, s := range ss {
		if s != "" {
			return false
		}
	}
	return true
}

// Bytes returns the message built so far, segments ended by CR.
func (b *Builder) Bytes() []byte { return b.buf }
