package chstore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MigrationsDir is the directory of the migration files inside the fs.FS
// given to Migrate (schemas.ClickHouse holds clickhouse/NNN_name.sql).
const MigrationsDir = "clickhouse"

// ErrChecksumMismatch is returned when a migration file changed after it was
// applied: the database no longer matches what the file says, and applying
// the new text would not fix that. Add a new numbered file instead.
var ErrChecksumMismatch = errors.New("chstore: migration changed after it was applied")

var migrationName = regexp.MustCompile(`^([0-9]+)_([a-z0-9_]+)\.sql$`)

// migration is one NNN_name.sql file.
type migration struct {
	version  uint32
	file     string // base name, e.g. 001_core.sql
	checksum string // sha256 of the file, hex
	text     string
}

// appliedMigration is what schema_migrations says about one version.
type appliedMigration struct {
	Name     string
	Checksum string
}

// Migrate applies, in version order, each clickhouse/NNN_name.sql of files
// that schema_migrations does not list yet, and records it there. It refuses
// to run when a file that was applied has changed since (ErrChecksumMismatch,
// naming the file). conn must be connected to database: statements in the
// files use unqualified names.
//
// Two processes may migrate at once: the statements are idempotent (IF NOT
// EXISTS) and a version recorded twice is read as one.
func Migrate(ctx context.Context, conn driver.Conn, database string, files fs.FS) error {
	if !validIdent(database) {
		return fmt.Errorf("chstore.Migrate: database %q must be [A-Za-z0-9_]+", database)
	}
	migs, err := loadMigrations(files)
	if err != nil {
		return fmt.Errorf("chstore.Migrate: %w", err)
	}
	var current string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&current); err != nil {
		return fmt.Errorf("chstore.Migrate: current database: %w", err)
	}
	if current != database {
		return fmt.Errorf("chstore.Migrate: connection uses database %q, not %q", current, database)
	}
	table := database + ".schema_migrations"
	// ReplacingMergeTree collapses the duplicate records of a concurrent
	// migration eventually; appliedMigrations does not depend on that.
	if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
ORDER BY version`); err != nil {
		return fmt.Errorf("chstore.Migrate: create schema_migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn, table)
	if err != nil {
		return fmt.Errorf("chstore.Migrate: %w", err)
	}
	// Check every applied file first, so a changed one stops the run before
	// anything newer is applied on top of a schema that is not what it says.
	var pending []migration
	for _, m := range migs {
		a, ok := applied[m.version]
		if !ok {
			pending = append(pending, m)
			continue
		}
		if a.Checksum != m.checksum {
			return fmt.Errorf("chstore.Migrate: %s/%s: %w (recorded sha256 %s as %s, file now %s)",
				MigrationsDir, m.file, ErrChecksumMismatch, a.Checksum, a.Name, m.checksum)
		}
	}
	for _, m := range pending {
		for i, stmt := range SplitStatements(m.text) {
			if err := conn.Exec(ctx, stmt); err != nil && !alreadyDone(stmt, err) {
				return fmt.Errorf("chstore.Migrate: %s/%s statement %d (%s): %w",
					MigrationsDir, m.file, i+1, firstLine(stmt), err)
			}
		}
		// The server stamps applied_at: the record is for operators, nothing
		// reads it back to decide.
		if err := conn.Exec(ctx, `INSERT INTO `+table+` (version, name, checksum, applied_at) SELECT ?, ?, ?, now()`,
			m.version, m.file, m.checksum); err != nil {
			return fmt.Errorf("chstore.Migrate: record %s/%s: %w", MigrationsDir, m.file, err)
		}
	}
	return nil
}

// alreadyDone reports whether err is ClickHouse refusing an ADD COLUMN for
// a column that exists, or a DROP COLUMN for one that does not (code 44):
// another process applied the same migration a moment ago. 18.16 knows no
// ADD COLUMN IF NOT EXISTS or DROP COLUMN IF EXISTS.
func alreadyDone(stmt string, err error) bool {
	var ex *clickhouse.Exception
	upper := strings.ToUpper(stmt)
	return (strings.Contains(upper, "ADD COLUMN") || strings.Contains(upper, "DROP COLUMN")) && errors.As(err, &ex) && ex.Code == 44
}

// Applied returns the migrations recorded in database.schema_migrations by
// version, one per version even when concurrent runs recorded it twice.
func Applied(ctx context.Context, conn driver.Conn, database string) (map[uint32]string, error) {
	if !validIdent(database) {
		return nil, fmt.Errorf("chstore.Applied: database %q must be [A-Za-z0-9_]+", database)
	}
	applied, err := appliedMigrations(ctx, conn, database+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("chstore.Applied: %w", err)
	}
	out := make(map[uint32]string, len(applied))
	for v, a := range applied {
		out[v] = a.Name
	}
	return out, nil
}

func appliedMigrations(ctx context.Context, conn driver.Conn, table string) (map[uint32]appliedMigration, error) {
	// GROUP BY instead of FINAL: exact whether or not the duplicates of a
	// concurrent run have merged; the earliest record is the one that counts.
	rows, err := conn.Query(ctx, `SELECT version, argMin(name, applied_at), argMin(checksum, applied_at)
FROM `+table+` GROUP BY version`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	out := map[uint32]appliedMigration{}
	for rows.Next() {
		var v uint32
		var a appliedMigration
		if err := rows.Scan(&v, &a.Name, &a.Checksum); err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		out[v] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	return out, nil
}

// loadMigrations reads clickhouse/*.sql in version order. A .sql file whose
// name is not NNN_name.sql, or two files with one version, is an error: a
// typo must not silently skip a migration.
func loadMigrations(files fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(files, MigrationsDir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MigrationsDir, err)
	}
	var migs []migration
	seen := map[uint32]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("%s/%s: name must be NNN_name.sql (name of [a-z0-9_])", MigrationsDir, e.Name())
		}
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("%s/%s: version must be 1-%d", MigrationsDir, e.Name(), uint32(1<<32-1))
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("%s/%s: version %d already used by %s", MigrationsDir, e.Name(), v, other)
		}
		seen[uint32(v)] = e.Name()
		b, err := fs.ReadFile(files, path.Join(MigrationsDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", MigrationsDir, e.Name(), err)
		}
		sum := sha256.Sum256(b)
		migs = append(migs, migration{version: uint32(v), file: e.Name(), checksum: hex.EncodeToString(sum[:]), text: string(b)})
	}
	slices.SortFunc(migs, func(a, b migration) int { return int(int64(a.version) - int64(b.version)) })
	return migs, nil
}

// SplitStatements splits a migration into statements: a statement ends with
// a line whose last non-blank character is ';'. Lines starting with "--" are
// comments and dropped; the native protocol takes one statement per query.
func SplitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		if strings.HasSuffix(trimmed, ";") {
			cur.WriteString(strings.TrimSuffix(strings.TrimRight(line, " \t\r"), ";"))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

func firstLine(stmt string) string {
	if i := strings.IndexByte(stmt, '\n'); i >= 0 {
		return stmt[:i]
	}
	return stmt
}

// schemaObject finds the tables and views a migration creates.
var schemaObject = regexp.MustCompile(`(?i)CREATE\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW)\s+IF\s+NOT\s+EXISTS\s+([A-Za-z0-9_]+)`)

// SchemaObjects returns the name of every table and view the migrations in
// files create, in order.
func SchemaObjects(files fs.FS) ([]string, error) {
	migs, err := loadMigrations(files)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range migs {
		for _, g := range schemaObject.FindAllStringSubmatch(m.text, -1) {
			if !slices.Contains(names, g[1]) {
				names = append(names, g[1])
			}
		}
	}
	return names, nil
}

// CheckSchema checks, changing nothing, that the connection's database
// holds every table and view the migrations in files create (on a cluster
// the Distributed tables carry those names): it names the missing ones.
func CheckSchema(ctx context.Context, conn driver.Conn, files fs.FS) error {
	want, err := SchemaObjects(files)
	if err != nil {
		return fmt.Errorf("chstore.CheckSchema: %w", err)
	}
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		return fmt.Errorf("chstore.CheckSchema: %w", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("chstore.CheckSchema: %w", err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("chstore.CheckSchema: %w", err)
	}
	var missing []string
	for _, n := range want {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("chstore.CheckSchema: the schema is not applied: missing %s", strings.Join(missing, ", "))
	}
	return nil
}
