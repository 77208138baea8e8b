package toevent

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrDirectory is wrapped in every error reading an organisation directory.
var ErrDirectory = errors.New("toevent: bad organisation directory")

// Org is one organisation of the directory.
type Org struct {
	ID        string // canonical id: what events carry as requester/responder
	Name      string
	Type      string // provider, hin, developer, ...
	Developer string // the EHR vendor
	Networks  []string
}

// Directory maps the identifiers messages carry (HD namespace ids,
// universal ids such as OIDs, NPIs) to organisations. It is read-only once
// loaded, so one Directory is shared by every connection.
type Directory struct {
	byIdentifier map[string]*Org
	orgs         int
}

// Columns of a directory file. identifier is required; the others are
// optional and in any order.
const (
	ColIdentifier = "identifier" // one or more identifiers, separated by ';'
	ColOrgID      = "org_id"     // canonical id; default: the row's first identifier
	ColName       = "name"
	ColType       = "type"
	ColDeveloper  = "developer"
	ColNetworks   = "networks" // separated by ';'
)

// LoadDirectory reads a directory CSV file (see ReadDirectory).
func LoadDirectory(path string) (*Directory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("toevent.LoadDirectory: %w", err)
	}
	defer f.Close()
	d, err := ReadDirectory(f, path)
	if err != nil {
		return nil, fmt.Errorf("toevent.LoadDirectory: %w", err)
	}
	return d, nil
}

// ReadDirectory reads a CSV with a header row naming its columns
// (identifier required; org_id, name, type, developer, networks optional).
// Several rows may name the same org_id with different identifiers; one
// identifier naming two organisations is an error, since events would
// depend on the row order. "urn:oid:" prefixes are dropped, as HL7 v2
// carries bare OIDs. name is used in errors.
func ReadDirectory(r io.Reader, name string) (*Directory, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: header: %v", ErrDirectory, name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col[ColIdentifier]; !ok {
		return nil, fmt.Errorf("%w: %s: no %q column in header %q", ErrDirectory, name, ColIdentifier, header)
	}
	d := &Directory{byIdentifier: map[string]*Org{}}
	byID := map[string]*Org{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrDirectory, name, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		ids := splitList(get(ColIdentifier))
		for i, id := range ids {
			ids[i] = normalizeIdentifier(id)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%w: %s:%d: empty identifier", ErrDirectory, name, line)
		}
		id := get(ColOrgID)
		if id == "" {
			id = ids[0]
		}
		org := byID[id]
		if org == nil {
			org = &Org{ID: id}
			byID[id] = org
			d.orgs++
		}
		fill := func(dst *string, v string) {
			if *dst == "" {
				*dst = v
			}
		}
		fill(&org.Name, get(ColName))
		fill(&org.Type, get(ColType))
		fill(&org.Developer, get(ColDeveloper))
		org.Networks = append(org.Networks, splitList(get(ColNetworks))...)
		for _, ident := range ids {
			if prev := d.byIdentifier[ident]; prev != nil && prev != org {
				return nil, fmt.Errorf("%w: %s:%d: identifier %q names both %q and %q", ErrDirectory, name, line, ident, prev.ID, org.ID)
			}
			d.byIdentifier[ident] = org
		}
	}
	return d, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func normalizeIdentifier(s string) string {
	return strings.TrimPrefix(strings.TrimSpace(s), "urn:oid:")
}

// Lookup returns the organisation an identifier names.
func (d *Directory) Lookup(identifier string) (Org, bool) {
	if d == nil || identifier == "" {
		return Org{}, false
	}
	o, ok := d.byIdentifier[normalizeIdentifier(identifier)]
	if !ok {
		return Org{}, false
	}
	return *o, true
}

// Len is the number of organisations.
func (d *Directory) Len() int {
	if d == nil {
		return 0
	}
	return d.orgs
}
