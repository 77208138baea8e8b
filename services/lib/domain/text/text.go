// Package text bounds a sender's text: what the mappings, the api and the
// audit listing keep of it.
package text

import "unicode/utf8"

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence:
// what is kept of a sender's text (reason texts, audit fields) is bounded
// and stays valid UTF-8.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:max(n, 0)]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
