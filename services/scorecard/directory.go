package scorecard

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// dirEntry is what the organisation directory says about one identifier.
type dirEntry struct {
	orgID     string // the identifier itself when the directory does not know it
	name      string
	developer string // "" when unknown
	networks  []string
}

// directory maps responder and requester identifiers to organisations,
// developers and networks.
type directory struct {
	byIdentifier map[string]dirEntry
	names        map[string]string // org_id -> name
	developers   map[string]string // org_id -> developer
}

func newDirectory() directory {
	return directory{byIdentifier: map[string]dirEntry{}, names: map[string]string{}, developers: map[string]string{}}
}

func loadDirectory(ctx context.Context, conn driver.Conn) (directory, error) {
	d := newDirectory()
	// Ordered: when an organisation's identifiers disagree, the first
	// identifier's name and developer win, the same on every run.
	rows, err := conn.Query(ctx, `SELECT identifier, org_id, name, developer, networks FROM directory ORDER BY identifier`)
	if err != nil {
		return d, fmt.Errorf("directory: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ident string
		var e dirEntry
		if err := rows.Scan(&ident, &e.orgID, &e.name, &e.developer, &e.networks); err != nil {
			return d, fmt.Errorf("directory: %w", err)
		}
		d.add(ident, e)
	}
	if err := rows.Err(); err != nil {
		return d, fmt.Errorf("directory: %w", err)
	}
	return d, nil
}

// add records an identifier's entry; called in identifier order.
func (d directory) add(ident string, e dirEntry) {
	if e.orgID == "" {
		e.orgID = ident
	}
	d.byIdentifier[ident] = e
	if _, ok := d.names[e.orgID]; !ok {
		d.names[e.orgID] = e.name
		d.developers[e.orgID] = e.developer
	}
}

// lookup returns the directory entry of an identifier; an unknown one is
// its own organisation, named by itself, with an unknown developer.
func (d directory) lookup(ident string) dirEntry {
	if e, ok := d.byIdentifier[ident]; ok {
		return e
	}
	return dirEntry{orgID: ident, name: ident}
}

// orgName returns an organisation's name, or its id when unknown.
func (d directory) orgName(orgID string) string {
	if n := d.names[orgID]; n != "" {
		return n
	}
	return orgID
}

// developerOf returns the developer of an organisation ("" when unknown).
func (d directory) developerOf(orgID string) string {
	return d.developers[orgID]
}
