package chstore

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
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

// directoryHeader is the first line a directory CSV must have, in this order.
var directoryHeader = []string{"identifier", "org_id", "name", "type", "developer", "networks"}

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
}

// ParseOrganizations reads a directory CSV: the header line
// identifier,org_id,name,type,developer,networks, then one line per
// identifier; networks are separated by ';'. Errors name the line and field.
// An identifier listed twice is an error: which line wins would be a guess.
func ParseOrganizations(r io.Reader) ([]Organization, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(directoryHeader)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadDirectory, err)
	}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")))
	}
	if !slices.Equal(header, directoryHeader) {
		return nil, fmt.Errorf("%w: header %q, want %q", ErrBadDirectory, strings.Join(header, ","), strings.Join(directoryHeader, ","))
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
		o.Networks = []string{}
		for n := range strings.SplitSeq(rec[5], ";") {
			if n = strings.TrimSpace(n); n != "" {
				o.Networks = append(o.Networks, n)
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// LoadOrganizations parses a directory CSV (see ParseOrganizations) and
// writes it into the organizations table with version loadedAt: each
// identifier's newest load wins in the directory view, so loading a corrected
// file again is how an entry changes. An identifier left out of a later file
// keeps its last row (the directory only grows). Nothing is written when the
// file has an error. It returns the number of identifiers loaded.
func LoadOrganizations(ctx context.Context, conn driver.Conn, r io.Reader, loadedAt time.Time) (int, error) {
	orgs, err := ParseOrganizations(r)
	if err != nil {
		return 0, fmt.Errorf("chstore.LoadOrganizations: %w", err)
	}
	if len(orgs) == 0 {
		return 0, nil
	}
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO organizations (identifier, org_id, name, org_type, developer, networks, version, loaded_at)`)
	if err != nil {
		return 0, fmt.Errorf("chstore.LoadOrganizations: %w", err)
	}
	version := uint64(loadedAt.UnixMilli())
	for _, o := range orgs {
		if err := batch.Append(o.Identifier, o.OrgID, o.Name, o.Type, o.Developer, o.Networks, version, loadedAt.UTC()); err != nil {
			_ = batch.Abort()
			return 0, fmt.Errorf("chstore.LoadOrganizations: %s: %w", o.Identifier, err)
		}
	}
	if err := batch.Send(); err != nil {
		return 0, fmt.Errorf("chstore.LoadOrganizations: %w", err)
	}
	return len(orgs), nil
}
