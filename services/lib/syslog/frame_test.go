package syslog

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadFrames(t *testing.T) {
	msgs := []string{
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
		"<85>1 2026-12-07T10:00:00Z gw.example.org ATNA - ITI-38 - <?xml version=\"1.0\"?>\n<AuditMessage>\n</AuditMessage>\n",
		"x",
	}
	var stream []byte
	for _, m := range msgs {
		stream = AppendFrame(stream, []byte(m))
	}
	r := NewReader(bytes.NewReader(stream), 200)
	for _, want := range msgs {
		got, err := r.ReadFrame()
		if err != nil || string(got) != want {
			t.Fatalf("ReadFrame = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		want    error
		goesOn  bool // the next frame ("2 ok") can be read after the error
		cutWant bool // io.ErrUnexpectedEOF is wrapped too
	}{
		{"too large is skipped", "201 " + strings.Repeat("x", 201) + "2 ok", ErrFrameTooLarge, true, false},
		{"too large and cut", "201 " + strings.Repeat("x", 50), ErrBadLength, false, true},
		{"not digits", "1a ok", ErrBadLength, false, false},
		{"leading zero", "02 ok", ErrBadLength, false, false},
		{"zero length", "0 2 ok", ErrBadLength, false, false},
		{"no space", "2\nok", ErrBadLength, false, false},
		{"no length", " 2 ok", ErrBadLength, false, false},
		{"non-transparent framing", "<34>1 - - - - - - hi\n", ErrBadLength, false, false},
		{"too many digits", "12345678901 x", ErrBadLength, false, false},
		{"length lies", "10 short", ErrBadLength, false, true},
		{"cut inside length", "12", ErrBadLength, false, true},
		{"LF between frames", "2 ok\n2 ok", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.stream), 200)
			_, err := r.ReadFrame()
			if tt.want == nil { // the first frame is good; the error is in the second
				_, err = r.ReadFrame()
				tt.want = ErrBadLength
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got := errors.Is(err, io.ErrUnexpectedEOF); got != tt.cutWant {
				t.Fatalf("err = %v: wraps io.ErrUnexpectedEOF = %v, want %v", err, got, tt.cutWant)
			}
			if errors.Is(err, ErrFrameTooLarge) && string(r.Dropped()) != strings.Repeat("x", 200) {
				t.Fatalf("Dropped() = %d bytes, want the frame's first 200", len(r.Dropped()))
			}
			if tt.name == "length lies" && string(r.Dropped()) != "short" {
				t.Fatalf("Dropped() = %q after a lying length, want the frame's bytes", r.Dropped())
			}
			if tt.name == "non-transparent framing" && string(r.Dropped()) != tt.stream {
				t.Fatalf("Dropped() = %q, want the stream read", r.Dropped())
			}
			got, err2 := r.ReadFrame()
			if tt.goesOn {
				if err2 != nil || string(got) != "ok" {
					t.Fatalf("after error: %q, %v; want the next frame", got, err2)
				}
				return
			}
			if err2 != err && err2.Error() != err.Error() {
				t.Fatalf("after error: %v; want the same error again", err2)
			}
		})
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestReadFrameStreamError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := NewReader(failingReader{boom}, 10).ReadFrame()
	if !errors.Is(err, boom) || errors.Is(err, ErrBadLength) {
		t.Fatalf("err = %v, want the stream's error alone", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("5 hello3 abc"))
	f.Add([]byte("0 x"))
	f.Add([]byte("<34>1 - - - - - -\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 64
		r := NewReader(bytes.NewReader(data), max)
		var again []byte
		clean := true
		for i := 0; i < 1000; i++ {
			got, err := r.ReadFrame()
			switch {
			case err == nil:
				if len(got) > max {
					t.Fatalf("frame of %d bytes over the limit", len(got))
				}
				again = AppendFrame(again, got)
			case errors.Is(err, ErrFrameTooLarge):
				if len(r.Dropped()) != max {
					t.Fatalf("kept %d bytes of an oversized frame, want the limit's %d", len(r.Dropped()), max)
				}
				clean = false
			case err == io.EOF:
				if clean && !bytes.Equal(again, data) {
					t.Fatalf("frames %q re-encode to %q", data, again)
				}
				return
			default:
				if !errors.Is(err, ErrBadLength) {
					t.Fatalf("unexpected error %v", err)
				}
				if _, err2 := r.ReadFrame(); err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("error %v not sticky: %v", err, err2)
				}
				return
			}
		}
	})
}
