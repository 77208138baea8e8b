package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/hinscore/hinscore/proto/outcomeclass"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// ErrBadParam is wrapped by every rejected request parameter (HTTP 400).
var ErrBadParam = errors.New("api: bad parameter")

func badParam(name, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrBadParam, name, fmt.Sprintf(format, args...))
}

// Request input is validated strictly before it reaches a query (where it
// is bound as a parameter anyway): anything outside these shapes is a 400,
// so a probe learns nothing from a database error.
var (
	// HL7 HD namespaces, OIDs, NPIs, FHIR identifiers and endpoints as they
	// appear in requester_org / responder_org.
	orgPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/^&#-]{0,127}$`)
	// HL7 MSH-10, FHIR ids (Type/id/_history/n, MessageHeader.id).
	controlIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)
	tokenPattern     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	dayPattern       = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	weekPattern      = regexp.MustCompile(`^\d{4}-W\d{2}$`)
	monthPattern     = regexp.MustCompile(`^\d{4}-\d{2}$`)
)

// parseChainID accepts only a canonical lower- or upper-case UUID.
func parseChainID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.UUID{}, badParam("id", "want a chain id (UUID, 36 characters)")
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, badParam("id", "want a chain id (UUID)")
	}
	return id, nil
}

func parseNetwork(name, s string) (string, error) {
	if err := bus.ValidNetwork(s); err != nil {
		return "", badParam(name, "want 1-64 of [A-Za-z0-9_-]")
	}
	return s, nil
}

func parsePatientToken(s string) (string, error) {
	if !tokenPattern.MatchString(s) {
		return "", badParam("token", "want a patient token (64 lower-case hex digits)")
	}
	return s, nil
}

func parseOutcomeClass(s string) (string, error) {
	if _, err := outcomeclass.Parse(s); err != nil {
		return "", badParam("outcome", "want one of the DOMAIN.md classes (fulfilled, refused_unjustified, ...)")
	}
	return s, nil
}

// parsePurpose accepts a canonical purpose name (lib/domain/purpose).
func parsePurpose(s string) (string, error) {
	if _, err := purpose.Parse(s); err != nil {
		return "", badParam("purpose", "want one of %s", purposeNames())
	}
	return s, nil
}

// purposeNames lists the canonical purposes, for error messages.
func purposeNames() string {
	names := make([]string, len(purpose.All))
	for i, p := range purpose.All {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// parseTime accepts RFC 3339 or a UTC day YYYY-MM-DD.
func parseTime(name, s string) (time.Time, error) {
	if dayPattern.MatchString(s) {
		t, err := time.Parse("2006-01-02", s)
		if err == nil {
			return t, nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, badParam(name, "want RFC 3339 (2026-11-22T10:00:00Z) or a day (2026-11-22)")
	}
	return t.UTC(), nil
}

// parsePeriod accepts a scorecard period label: day, ISO week or month.
func parsePeriod(s string) (string, error) {
	var ok bool
	switch {
	case dayPattern.MatchString(s):
		_, err := time.Parse("2006-01-02", s)
		ok = err == nil
	case weekPattern.MatchString(s):
		w, _ := strconv.Atoi(s[6:])
		ok = w >= 1 && w <= 53
	case monthPattern.MatchString(s):
		_, err := time.Parse("2006-01", s)
		ok = err == nil
	}
	if !ok {
		return "", badParam("period", "want a day (2026-11-22), an ISO week (2026-W47) or a month (2026-11)")
	}
	return s, nil
}

func parseGranularity(s string) (string, error) {
	switch s {
	case "day", "week", "month":
		return s, nil
	}
	return "", badParam("granularity", "want day, week or month")
}

func parseLimit(s string, def, maxN int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxN || strconv.Itoa(n) != s {
		return 0, badParam("limit", "want 1..%d", maxN)
	}
	return n, nil
}

// parseReason accepts the investigator's reason for a raw access: printable
// text of 4 to 500 characters on one line, kept verbatim in the audit log.
func parseReason(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", badParam("reason", "required: say why you open the raw messages (it is written to the audit log)")
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) < 4 || utf8.RuneCountInString(s) > 500 {
		return "", badParam("reason", "want 4-500 characters of text")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "", badParam("reason", "control characters are not allowed")
		}
	}
	return s, nil
}

// encodeCursor and parseCursor carry the search position between pages:
// base64url of "<requested_at_ms>.<chain id>".
func encodeCursor(c cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.RequestedAtMs, 10) + "." + c.ID))
}

func parseCursor(s string) (*cursor, error) {
	bad := badParam("cursor", "not a cursor this API returned")
	if len(s) > 80 {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	ms, id, ok := strings.Cut(string(b), ".")
	if !ok {
		return nil, bad
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != ms {
		return nil, bad
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 || u.String() != id {
		return nil, bad
	}
	c := &cursor{RequestedAtMs: n, ID: id}
	// Base64 leaves the unused bits of the last character free: only the
	// spelling the API issues is one of its cursors.
	if encodeCursor(*c) != s {
		return nil, bad
	}
	return c, nil
}
