package soap

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// MaxParts bounds the parts of an MTOM package read before its root is
// found.
const MaxParts = 64

// Envelope returns the SOAP envelope of a body: the body itself, or the
// root part of a multipart/related (MTOM/XOP) package, which is the part
// the type's start parameter names, else the first. contentType is the
// HTTP Content-Type; "" for a captured file, where a package is known by
// its first line ("--boundary") or by a Content-Type header block before
// it. Parts after the root (the documents) are not read.
func Envelope(contentType string, data []byte, maxBytes int) ([]byte, error) {
	if contentType == "" {
		contentType, data = sniff(data)
		if contentType == "" {
			return data, nil
		}
	}
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w: Content-Type %q: %v", ErrMIME, contentType, err)
	}
	if media != "multipart/related" {
		return data, nil
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, fmt.Errorf("%w: no boundary", ErrMIME)
	}
	start := strings.Trim(params["start"], "<>")
	r := multipart.NewReader(bytes.NewReader(data), boundary)
	for i := 0; i < MaxParts; i++ {
		part, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: part %d: %v", ErrMIME, i+1, err)
		}
		if start != "" && strings.Trim(part.Header.Get("Content-ID"), "<>") != start {
			continue
		}
		root, err := io.ReadAll(io.LimitReader(part, int64(maxBytes)+1))
		if err != nil {
			return nil, fmt.Errorf("%w: root part: %v", ErrMIME, err)
		}
		if len(root) > maxBytes {
			return nil, &ParseError{Prefix: "soap", Reason: fmt.Sprintf("root part over %d bytes", maxBytes), Err: ErrTooLarge}
		}
		return root, nil
	}
	if start != "" {
		return nil, fmt.Errorf("%w: no part with Content-ID <%s>", ErrMIME, start)
	}
	return nil, fmt.Errorf("%w: no part", ErrMIME)
}

// sniff finds the Content-Type of a captured file: a header block
// (Content-Type: ... then an empty line), or a first line "--boundary".
// It returns "" and the data for anything else (XML).
func sniff(data []byte) (string, []byte) {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) >= 13 && strings.EqualFold(string(t[:13]), "content-type:") {
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(t)))
		h, err := tp.ReadMIMEHeader()
		if err == nil || err == io.EOF {
			if i := headerEnd(t); i > 0 {
				return h.Get("Content-Type"), t[i:]
			}
		}
		return "", data
	}
	if !bytes.HasPrefix(t, []byte("--")) {
		return "", data
	}
	line, _, _ := bytes.Cut(t[2:], []byte("\n"))
	boundary := strings.TrimSpace(string(line))
	if boundary == "" {
		return "", data
	}
	return "multipart/related; boundary=\"" + boundary + "\"", t
}

// headerEnd is the offset after a header block's empty line, 0 for none.
func headerEnd(t []byte) int {
	if i := bytes.Index(t, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	if i := bytes.Index(t, []byte("\n\n")); i >= 0 {
		return i + 2
	}
	return 0
}
