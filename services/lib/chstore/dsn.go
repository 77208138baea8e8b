// Package chstore opens hinscore's ClickHouse database over the native
// protocol, creates it when missing and applies the numbered migrations of
// the schemas module, recording each one so that a changed file is refused.
package chstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// Defaults of a DSN that leaves them out.
const (
	DefaultPort     = 9000
	DefaultDatabase = "hinscore"
	DefaultUser     = "default"
)

// ErrBadDSN is wrapped by every ParseDSN error.
var ErrBadDSN = errors.New("chstore: bad DSN")

// DSN says where hinscore's ClickHouse database is:
// clickhouse://[user[:pass]@]host:port/database.
type DSN struct {
	Host     string
	Port     int
	Database string
	User     string
	Password string
	// CheckSchema (?schema=check) only checks that the schema is there:
	// for a cluster, where deploy/clickhouse/cluster/schema.sql is applied
	// once by an administrator and the services' users may not run DDL.
	// By default (?schema=migrate) the database is created and migrated.
	CheckSchema bool
}

// ParseDSN parses clickhouse://[user[:pass]@]host[:port][/database][?schema=migrate|check]. The port
// defaults to 9000 (native protocol), the database to "hinscore", the user to
// "default". The database name is restricted to [A-Za-z0-9_]+ because it is
// spliced into DDL, where it cannot be a bound parameter.
func ParseDSN(s string) (DSN, error) {
	bad := func(part, format string, args ...any) (DSN, error) {
		return DSN{}, fmt.Errorf("%w: %s: %s", ErrBadDSN, part, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		// url's own message repeats the whole string, password included.
		return bad("syntax", "not a URL of the form clickhouse://[user[:pass]@]host:port/database")
	}
	if u.Scheme != "clickhouse" {
		return bad("scheme", "%q, want clickhouse (native protocol)", u.Scheme)
	}
	if u.Opaque != "" {
		return bad("syntax", "missing // after clickhouse:")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil || u.ForceQuery && u.RawQuery == "" {
		return bad("query", "not key=value options")
	}
	checkSchema := false
	for k, v := range q {
		switch {
		case k != "schema":
			return bad("query", "option %q is not supported (only schema=migrate|check)", k)
		case len(v) != 1 || (v[0] != "migrate" && v[0] != "check"):
			return bad("query", "schema=%q, want migrate or check", strings.Join(v, ","))
		}
		checkSchema = v[0] == "check"
	}
	if u.Fragment != "" {
		return bad("fragment", "%q is not allowed", u.Fragment)
	}
	d := DSN{Host: u.Hostname(), Port: DefaultPort, Database: DefaultDatabase, User: DefaultUser, CheckSchema: checkSchema}
	if d.Host == "" {
		return bad("host", "missing")
	}
	if strings.ContainsAny(d.Host, " \t/\\@") {
		return bad("host", "%q is not a host name or address", d.Host)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port", "%q is not a port number 1-65535", p)
		}
		d.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("port", "empty")
	}
	if u.User != nil {
		if name := u.User.Username(); name != "" {
			d.User = name
		}
		if pass, ok := u.User.Password(); ok {
			d.Password = pass
		}
	}
	if strings.ContainsFunc(d.User, unicode.IsControl) {
		return bad("user", "%q contains control characters", d.User)
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if !validIdent(db) {
			return bad("database", "%q must be [A-Za-z0-9_]+", db)
		}
		d.Database = db
	}
	return d, nil
}

// validIdent reports whether s is a plain ClickHouse identifier that needs no
// quoting: 1-64 of [A-Za-z0-9_].
func validIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Addr is host:port for the driver.
func (d DSN) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// String renders the DSN for logs: never the password, and the user only
// when it is not the default one.
func (d DSN) String() string {
	var b strings.Builder
	b.WriteString("clickhouse://")
	if d.User != "" && d.User != DefaultUser {
		b.WriteString(url.User(d.User).String())
		b.WriteByte('@')
	}
	b.WriteString(d.Addr())
	b.WriteByte('/')
	b.WriteString(d.Database)
	if d.CheckSchema {
		b.WriteString("?schema=check")
	}
	return b.String()
}
