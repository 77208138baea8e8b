// Package chstore opens hinscore's ClickHouse database over the native
// protocol, creates it when missing and applies the numbered migrations of
// the schemas module, recording each one so that a changed file is refused.
package chstore

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// Defaults of a DSN that leaves them out.
const (
	DefaultPort     = 9000
	DefaultTLSPort  = 9440
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
	// Secure (?secure=true) speaks TLS (the server's tcp_port_secure,
	// 9440 when the DSN names no port), verifying the server's certificate
	// against the system's CAs, or only those of CAFile (?ca_file=PATH);
	// SkipVerify (?skip_verify=true) does not verify it (a test server).
	Secure     bool
	CAFile     string
	SkipVerify bool
	// PasswordFile (?password_file=PATH) is where Password was read from
	// (a mounted Secret), instead of the DSN carrying it.
	PasswordFile string
}

// ParseDSN parses clickhouse://[user[:pass]@]host[:port][/database][?options]
// with the options schema=migrate|check, secure=true|false, ca_file=PATH,
// skip_verify=true|false and password_file=PATH (read here: the password,
// its last line end trimmed). The port defaults to 9000 (native protocol;
// 9440 with secure=true), the database to "hinscore", the user to
// "default". The database name is restricted to [A-Za-z0-9_]+ because it
// is spliced into DDL, where it cannot be a bound parameter. No error
// repeats the password.
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
	if u.Fragment != "" {
		return bad("fragment", "%q is not allowed", u.Fragment)
	}
	d := DSN{Host: u.Hostname(), Port: DefaultPort, Database: DefaultDatabase, User: DefaultUser}
	if err := d.setOptions(u); err != nil {
		return DSN{}, err
	}
	if d.Secure {
		d.Port = DefaultTLSPort
	}
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
	if d.PasswordFile != "" {
		if d.Password != "" {
			return bad("password_file", "the DSN also has a password: give one or the other")
		}
		if d.Password, err = readPassword(d.PasswordFile); err != nil {
			return bad("password_file", "%v", err)
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

// setOptions reads the DSN's query options into d, each at most once.
func (d *DSN) setOptions(u *url.URL) error {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil || u.ForceQuery && u.RawQuery == "" {
		return fmt.Errorf("%w: query: not key=value options", ErrBadDSN)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: query: %s", ErrBadDSN, fmt.Sprintf(format, args...))
	}
	for k, v := range q {
		if len(v) != 1 {
			return bad("%s given %d times", k, len(v))
		}
		var ok bool
		switch k {
		case "schema":
			d.CheckSchema, ok = v[0] == "check", v[0] == "check" || v[0] == "migrate"
		case "secure":
			d.Secure, ok = v[0] == "true", v[0] == "true" || v[0] == "false"
		case "skip_verify":
			d.SkipVerify, ok = v[0] == "true", v[0] == "true" || v[0] == "false"
		case "ca_file":
			d.CAFile, ok = v[0], v[0] != ""
		case "password_file":
			d.PasswordFile, ok = v[0], v[0] != ""
		default:
			return bad("option %q is not supported (schema, secure, ca_file, skip_verify, password_file)", k)
		}
		if !ok {
			return bad("%s=%q is not a value it takes", k, v[0])
		}
	}
	switch {
	case (d.CAFile != "" || d.SkipVerify) && !d.Secure:
		return bad("ca_file and skip_verify need secure=true")
	case d.CAFile != "" && d.SkipVerify:
		return bad("ca_file and skip_verify=true contradict each other")
	}
	return nil
}

// readPassword reads a password file: its content, without the line end
// an editor or `echo` leaves. The error names the file, never its content.
func readPassword(path string) (string, error) {
	b, err := readFileAtMost(path, 4<<10)
	if err != nil {
		return "", err
	}
	p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if p == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return p, nil
}

// readFileAtMost reads a regular file of at most limit bytes: a DSN may
// not name a device or a pipe (/dev/zero, /dev/stdin), which would never
// end. Its errors name the file, never what it holds.
func readFileAtMost(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file", path)
	case info.Size() > limit:
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
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

// String renders the DSN for logs: never the password (a password file
// by its path), and the user only when it is not the default one.
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
	var opts []string
	add := func(key, value string, on bool) {
		if on {
			// A path reads better with its slashes, which a query may hold.
			opts = append(opts, key+"="+strings.ReplaceAll(url.QueryEscape(value), "%2F", "/"))
		}
	}
	add("schema", "check", d.CheckSchema)
	add("secure", "true", d.Secure)
	add("ca_file", d.CAFile, d.CAFile != "")
	add("skip_verify", "true", d.SkipVerify)
	add("password_file", d.PasswordFile, d.PasswordFile != "")
	if len(opts) > 0 {
		b.WriteByte('?')
		b.WriteString(strings.Join(opts, "&"))
	}
	return b.String()
}
