package fhirmap

import "unicode/utf8"

// peekType finds the top-level "resourceType" of a JSON object without
// decoding the rest, so that a resource is decoded once, straight into the
// struct of its type. It returns "" when it cannot tell (not an object,
// escapes or invalid UTF-8 in the key or the value, no such key): the caller then decodes
// a head first, which also reports the syntax error precisely.
func peekType(b []byte) string {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ""
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return ""
		}
		kStart := i + 1
		kEnd, ok := stringEnd(b, i)
		if !ok {
			return ""
		}
		key := b[kStart:kEnd]
		i = skipSpace(b, kEnd+1)
		if i >= len(b) || b[i] != ':' {
			return ""
		}
		i = skipSpace(b, i+1)
		if string(key) == "resourceType" {
			if i >= len(b) || b[i] != '"' {
				return ""
			}
			end, ok := stringEnd(b, i)
			if !ok {
				return ""
			}
			v := b[i+1 : end]
			for _, c := range v {
				if c == '\\' {
					return ""
				}
			}
			if !utf8.Valid(v) {
				// encoding/json reads invalid bytes as U+FFFD; let it.
				return ""
			}
			return string(v)
		}
		next, ok := skipValue(b, i)
		if !ok {
			return ""
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ',' {
			return ""
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the closing quote of the string at i.
func stringEnd(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j, true
		}
	}
	return 0, false
}

// skipValue returns the index just after the value starting at i. It does
// not validate: the decoder that follows does.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, ok := stringEnd(b, i)
		return end + 1, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, ok := stringEnd(b, j)
				if !ok {
					return 0, false
				}
				j = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
			j++
		}
		return j, j > i
	}
}
