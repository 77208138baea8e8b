package chstore

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ErrBadDirectory is wrapped by every error about the content of an
// organisation directory file.
var ErrBadDirectory = errors.New("chstore: bad organisation directory")

// Organisation types of the directory (DOMAIN.md).
const (
	OrgProvider  = "provider"
	OrgHIN       = "hin"
	OrgDeveloper = "developer"
)

// Kinds of the directory's identifiers (organizations.identifier_kind).
const (
	// KindIdentifier is what requester_org / responder_org carry.
	KindIdentifier = "identifier"
	// KindHomeCommunity is an IHE home community id, what
	// requester_community / responder_community carry.
	KindHomeCommunity = "home_community"
)

// directoryHeader is the first line a directory CSV must have, in this
// order; the column home_community_ids may follow it.
var (
	directoryHeader  = []string{"identifier", "org_id", "name", "type", "developer", "networks"}
	communitiesField = "home_community_ids"
)

// oid is an ISO object identifier in dotted form: its first arc 0, 1 or 2,
// no leading zeros.
var oid = regexp.MustCompile(`^[0-2](\.(0|[1-9][0-9]*))+$`)

// HomeCommunityID returns the canonical form of an IHE home community id,
// "urn:oid:" and an OID (the prefix in lower case, a bare OID given it),
// or an error when s is not one.
func HomeCommunityID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 8 && strings.EqualFold(s[:8], "urn:oid:") {
		s = s[8:]
	}
	if !oid.MatchString(s) {
		return "", fmt.Errorf("%q is not a home community id (urn:oid: and an OID)", s)
	}
	return "urn:oid:" + s, nil
}

// Organization is one identifier of the directory: the string that appears
// as requester_org / responder_org in events and outcomes (an HL7 HD
// namespace, an OID, an NPI, a FHIR Organization identifier), the
// organisation it names, and who built its software.
type Organization struct {
	Identifier string
	OrgID      string // groups the identifiers of one organisation
	Name       string
	Type       string   // provider, hin or developer
	Developer  string   // EHR vendor, "" when unknown
	Networks   []string // the HINs it belongs to
	// HomeCommunities are the IHE home community ids (urn:oid:...) by
	// which cross-community transactions name the organisation; each is
	// stored as an identifier of its own, of kind KindHomeCommunity.
	HomeCommunities []string
}

// ParseOrganizations reads a directory CSV: the header line
// identifier,org_id,name,type,developer,networks, optionally followed by
// home_community_ids, then one line per identifier; networks and home
// community ids are separated by ';'. Errors name the line and field.
// An identifier or community id listed twice is an error: which line wins
// would be a guess.
func ParseOrganizations(r io.Reader) ([]Organization, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // every line has as many fields as the header
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadDirectory, err)
	}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")))
	}
	withCommunities := slices.Equal(header, append(slices.Clone(directoryHeader), communitiesField))
	if !slices.Equal(header, directoryHeader) && !withCommunities {
		return nil, fmt.Errorf("%w: header %q, want %q, optionally followed by %s", ErrBadDirectory,
			strings.Join(header, ","), strings.Join(directoryHeader, ","), communitiesField)
	}
	var out []Organization
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadDirectory, err)
		}
		line, _ := cr.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		o := Organization{Identifier: rec[0], OrgID: rec[1], Name: rec[2], Type: strings.ToLower(rec[3]), Developer: rec[4]}
		bad := func(field, format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s: %s", ErrBadDirectory, line, field, fmt.Sprintf(format, args...))
		}
		switch {
		case o.Identifier == "":
			return nil, bad("identifier", "empty")
		case o.OrgID == "":
			return nil, bad("org_id", "empty")
		case o.Name == "":
			return nil, bad("name", "empty")
		}
		if o.Type != OrgProvider && o.Type != OrgHIN && o.Type != OrgDeveloper {
			return nil, bad("type", "%q, want provider, hin or developer", rec[3])
		}
		if prev, dup := seen[o.Identifier]; dup {
			return nil, bad("identifier", "%q already on line %d", o.Identifier, prev)
		}
		seen[o.Identifier] = line
		o.Networks = splitList(rec[5])
		if withCommunities {
			for _, c := range splitList(rec[6]) {
				id, err := HomeCommunityID(c)
				if err != nil {
					return nil, bad(communitiesField, "%v", err)
				}
				if prev, dup := seen[id]; dup {
					return nil, bad(communitiesField, "%q already on line %d", id, prev)
				}
				seen[id] = line
				o.HomeCommunities = append(o.HomeCommunities, id)
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// splitList splits a ';'-separated field, dropping empty items.
func splitList(field string) []string {
	out := []string{}
	for n := range strings.SplitSeq(field, ";") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// LoadOrganizations parses a directory CSV (see ParseOrganizations) and
// writes it into the organizations table with version loadedAt: each
// identifier's newest load wins in the directory view, so loading a corrected
// file again is how an entry changes. An identifier left out of a later file
// keeps its last row (the directory only grows). Nothing is written when the
// file has an error. It returns the number of identifiers loaded, home
// community ids included.
func LoadOrganizations(ctx context.Context, conn driver.Conn, r io.Reader, loadedAt time.Time) (int, error) {
	orgs, err := ParseOrganizations(r)
	if err != nil {
		return 0, fmt.Errorf("chstore.LoadOrganizations: %w", err)
	}
	if len(orgs) == 0 {
		return 0, nil
	}
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO organizations (identifier, org_id, name, org_type, developer, networks, version,
 loaded_at, identifier_kind)`)
	if err != nil {
		return 0, fmt.Errorf("chstore.LoadOrganizations: %w", err)
	}
	version := uint64(loadedAt.UnixMilli())
	n := 0
	for _, o := range orgs {
		kinds := map[string][]string{KindIdentifier: {o.Identifier}, KindHomeCommunity: o.HomeCommunities}
		for _, kind := range []string{KindIdentifier, KindHomeCommunity} {
			for _, id := range kinds[kind] {
				if err := batch.Append(id, o.OrgID, o.Name, o.Type, o.Developer, o.Networks, version, loadedAt.UTC(), kind); err != nil {
					_ = batch.Abort()
					return 0, fmt.Errorf("chstore.LoadOrganizations: %s: %w", id, err)
				}
				n++
			}
		}
	}
	if err := batch.Send(); err != nil {
		return 0, fmt.Errorf("chstore.LoadOrganizations: %w", err)
	}
	return n, nil
}
