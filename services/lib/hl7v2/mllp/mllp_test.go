package mllp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadFrames(t *testing.T) {
	var stream []byte
	stream = AppendFrame(stream, []byte("MSH|one"))
	stream = append(stream, '\r', '\n')
	stream = AppendFrame(stream, []byte("MSH|two"))
	r := NewReader(bytes.NewReader(stream), 100)
	for _, want := range []string{"MSH|one", "MSH|two"} {
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
		name   string
		stream string
		want   error
	}{
		{"too large then recovers", "\x0b" + strings.Repeat("x", 200) + "\x1c\r\x0bMSH|ok\x1c\r", ErrFrameTooLarge},
		{"junk before frame", "GET / HTTP/1.1\r\n\x0bMSH|ok\x1c\r", ErrNoStartBlock},
		{"cut inside frame", "\x0bMSH|cut", io.ErrUnexpectedEOF},
		{"bad end", "\x0bMSH|x\x1cZ", ErrBadEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.stream), 100)
			_, err := r.ReadFrame()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == ErrFrameTooLarge || tt.want == ErrNoStartBlock {
				got, err := r.ReadFrame()
				if err != nil || string(got) != "MSH|ok" {
					t.Fatalf("after error: %q, %v; want the next frame", got, err)
				}
			}
		})
	}
}

func TestWriteFrameRejectsEndBlock(t *testing.T) {
	if err := WriteFrame(io.Discard, []byte("a\x1cb")); err == nil {
		t.Fatal("WriteFrame accepted a message containing 0x1C")
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("\x0bMSH|^~\\&|A\x1c\r"))
	f.Add([]byte("junk\x0b\x1c\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 64)
		for i := 0; i < 100; i++ {
			got, err := r.ReadFrame()
			if err == nil && len(got) > 64 {
				t.Fatalf("frame of %d bytes over the limit", len(got))
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
		}
	})
}
