package chstore

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/lib/service"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    DSN
		badPart string // the part the error must name; "" means no error
	}{
		{name: "full", in: "clickhouse://writer:s3cret@db.example:9440/hin_prod",
			want: DSN{Host: "db.example", Port: 9440, Database: "hin_prod", User: "writer", Password: "s3cret"}},
		{name: "defaults", in: "clickhouse://127.0.0.1",
			want: DSN{Host: "127.0.0.1", Port: 9000, Database: "hinscore", User: "default"}},
		{name: "trailing slash", in: "clickhouse://127.0.0.1:9001/",
			want: DSN{Host: "127.0.0.1", Port: 9001, Database: "hinscore", User: "default"}},
		{name: "user only", in: "clickhouse://bob@h:1/d",
			want: DSN{Host: "h", Port: 1, Database: "d", User: "bob"}},
		{name: "escaped password", in: "clickhouse://bob:p%40ss%2Fw@h:9000/d",
			want: DSN{Host: "h", Port: 9000, Database: "d", User: "bob", Password: "p@ss/w"}},
		{name: "ipv6", in: "clickhouse://[::1]:9000/hinscore",
			want: DSN{Host: "::1", Port: 9000, Database: "hinscore", User: "default"}},
		{name: "spaces around", in: "  clickhouse://h:9000/db  ",
			want: DSN{Host: "h", Port: 9000, Database: "db", User: "default"}},

		{name: "http scheme", in: "http://h:8123/db", badPart: "scheme"},
		{name: "no scheme", in: "h:9000/db", badPart: "scheme"},
		{name: "opaque", in: "clickhouse:h:9000/db", badPart: "syntax"},
		{name: "empty", in: "", badPart: "scheme"},
		{name: "no host", in: "clickhouse://:9000/db", badPart: "host"},
		{name: "port zero", in: "clickhouse://h:0/db", badPart: "port"},
		{name: "port too big", in: "clickhouse://h:70000/db", badPart: "port"},
		{name: "port empty", in: "clickhouse://h:/db", badPart: "port"},
		{name: "schema check", in: "clickhouse://h:9000/db?schema=check",
			want: DSN{Host: "h", Port: 9000, Database: "db", User: "default", CheckSchema: true}},
		{name: "schema migrate", in: "clickhouse://h:9000/db?schema=migrate",
			want: DSN{Host: "h", Port: 9000, Database: "db", User: "default"}},

		{name: "secure", in: "clickhouse://h/db?secure=true",
			want: DSN{Host: "h", Port: 9440, Database: "db", User: "default", Secure: true}},
		{name: "secure own port", in: "clickhouse://w:pw@h:9999/db?secure=true&ca_file=/etc/ch/ca.pem&schema=check",
			want: DSN{Host: "h", Port: 9999, Database: "db", User: "w", Password: "pw", CheckSchema: true, Secure: true, CAFile: "/etc/ch/ca.pem"}},
		{name: "skip verify", in: "clickhouse://h/db?secure=true&skip_verify=true",
			want: DSN{Host: "h", Port: 9440, Database: "db", User: "default", Secure: true, SkipVerify: true}},
		{name: "not secure", in: "clickhouse://h/db?secure=false&skip_verify=false",
			want: DSN{Host: "h", Port: 9000, Database: "db", User: "default"}},
		{name: "query", in: "clickhouse://h:9000/db?compress=true", badPart: "query"},
		{name: "secure yes", in: "clickhouse://h:9000/db?secure=yes", badPart: "query"},
		{name: "ca without secure", in: "clickhouse://h:9000/db?ca_file=/ca.pem", badPart: "query"},
		{name: "skip without secure", in: "clickhouse://h:9000/db?skip_verify=true", badPart: "query"},
		{name: "ca and skip", in: "clickhouse://h/db?secure=true&ca_file=/ca.pem&skip_verify=true", badPart: "query"},
		{name: "empty ca", in: "clickhouse://h/db?secure=true&ca_file=", badPart: "query"},
		{name: "password file missing", in: "clickhouse://w@h/db?password_file=/nonexistent/pw", badPart: "password_file"},
		{name: "password file a device", in: "clickhouse://w@h/db?password_file=/dev/zero", badPart: "password_file"},
		{name: "password file a directory", in: "clickhouse://w@h/db?password_file=/", badPart: "password_file"},
		{name: "password file and password", in: "clickhouse://w:pw@h/db?password_file=/nonexistent/pw", badPart: "password_file"},
		{name: "schema other", in: "clickhouse://h:9000/db?schema=drop", badPart: "query"},
		{name: "schema twice", in: "clickhouse://h:9000/db?schema=check&schema=migrate", badPart: "query"},
		{name: "schema and other", in: "clickhouse://h:9000/db?schema=check&x=1", badPart: "query"},
		{name: "bad query", in: "clickhouse://h:9000/db?%zz", badPart: "query"},
		{name: "empty query", in: "clickhouse://h:9000/db?", badPart: "query"},
		{name: "fragment", in: "clickhouse://h:9000/db#x", badPart: "fragment"},
		{name: "injection semicolon", in: "clickhouse://h:9000/db;DROP%20DATABASE%20x", badPart: "database"},
		{name: "injection space", in: "clickhouse://h:9000/db%20ENGINE%3DMemory", badPart: "database"},
		{name: "injection backquote", in: "clickhouse://h:9000/a%60b", badPart: "database"},
		{name: "dotted name", in: "clickhouse://h:9000/system.tables", badPart: "database"},
		{name: "nested path", in: "clickhouse://h:9000/a/b", badPart: "database"},
		{name: "dash", in: "clickhouse://h:9000/hin-score", badPart: "database"},
		{name: "too long", in: "clickhouse://h:9000/" + strings.Repeat("a", 65), badPart: "database"},
		{name: "control char user", in: "clickhouse://a%0Ab@h:9000/db", badPart: "user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDSN(tt.in)
			if tt.badPart != "" {
				if err == nil {
					t.Fatalf("ParseDSN(%q) = %+v, want an error naming %s", tt.in, got, tt.badPart)
				}
				if !errors.Is(err, ErrBadDSN) {
					t.Errorf("error %v does not wrap ErrBadDSN", err)
				}
				if !strings.Contains(err.Error(), ": "+tt.badPart+":") {
					t.Errorf("error %q does not name %q", err, tt.badPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDSN(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseDSN(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDSNErrorHidesPassword(t *testing.T) {
	_, err := ParseDSN("clickhouse://u:topsecret@h:99999/db")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("error %v: want one that does not repeat the password", err)
	}
}

// TestPasswordFile: the password of a mounted Secret, read at parse time
// without its line end; an empty file is refused; String names the file,
// never the password.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("s3cret from a file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := ParseDSN("clickhouse://writer@ch:9440/hinscore?secure=true&password_file=" + url.QueryEscape(pw))
	if err != nil {
		t.Fatal(err)
	}
	if d.Password != "s3cret from a file" || d.User != "writer" || d.PasswordFile != pw {
		t.Errorf("%+v: want the file's password", d)
	}
	if str := d.String(); strings.Contains(str, "s3cret") || !strings.Contains(str, "password_file=") {
		t.Errorf("String() = %q: want the file named, not the password", str)
	}
	if back, err := ParseDSN(d.String()); err != nil || back != d {
		t.Errorf("round trip of %q: %+v, %v", d.String(), back, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseDSN("clickhouse://w@h/db?password_file=" + url.QueryEscape(empty)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty password file: %v", err)
	}
}

func TestDSNString(t *testing.T) {
	tests := []struct {
		in   DSN
		want string
	}{
		{DSN{Host: "h", Port: 9000, Database: "hinscore", User: "default"}, "clickhouse://h:9000/hinscore"},
		{DSN{Host: "h", Port: 9000, Database: "d", User: "bob", Password: "secret"}, "clickhouse://bob@h:9000/d"},
		{DSN{Host: "::1", Port: 9000, Database: "d"}, "clickhouse://[::1]:9000/d"},
		{DSN{Host: "h", Port: 9000, Database: "d", User: "default", CheckSchema: true}, "clickhouse://h:9000/d?schema=check"},
		{DSN{Host: "h", Port: 9440, Database: "d", User: "w", Password: "pw", Secure: true, CAFile: "/ca.pem"}, "clickhouse://w@h:9440/d?secure=true&ca_file=/ca.pem"},
		{DSN{Host: "h", Port: 9440, Database: "d", Secure: true, SkipVerify: true}, "clickhouse://h:9440/d?secure=true&skip_verify=true"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
		back, err := ParseDSN(tt.in.String())
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", tt.in.String(), err)
			continue
		}
		if back.Host != tt.in.Host || back.Port != tt.in.Port || back.Database != tt.in.Database ||
			back.Secure != tt.in.Secure || back.CAFile != tt.in.CAFile || back.SkipVerify != tt.in.SkipVerify {
			t.Errorf("round trip of %q = %+v", tt.in.String(), back)
		}
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"clickhouse://u:p@h:9000/db", "clickhouse://[::1]/x", "clickhouse://h:/", "http://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDSN(s)
		if err != nil {
			return
		}
		// Whatever parses must be safe to splice into DDL and must print
		// without its password.
		if !validIdent(d.Database) {
			t.Fatalf("ParseDSN(%q) accepted database %q", s, d.Database)
		}
		if d.Password != "" && strings.Contains(d.String(), d.Password) && !strings.Contains(d.Host+d.User+d.Database, d.Password) {
			t.Fatalf("String() of %q shows the password", s)
		}
	})
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor int
		bad          bool
	}{
		{in: "18.16.1", major: 18, minor: 16},
		{in: "24.8.4.13", major: 24, minor: 8},
		{in: "25.3", major: 25, minor: 3},
		{in: "25", bad: true},
		{in: "x.1.2", bad: true},
		{in: "1.y", bad: true},
	}
	for _, tt := range tests {
		major, minor, err := parseVersion(tt.in)
		if tt.bad != (err != nil) {
			t.Errorf("parseVersion(%q) error = %v, want error %v", tt.in, err, tt.bad)
			continue
		}
		if major != tt.major || minor != tt.minor {
			t.Errorf("parseVersion(%q) = %d.%d, want %d.%d", tt.in, major, minor, tt.major, tt.minor)
		}
	}
}

// TestClickHouseSetting: HINSCORE_CLICKHOUSE_DSN as the services declare
// it (chstore.ClickHouse), parsed by ParseDSN, its errors under its name.
func TestClickHouseSetting(t *testing.T) {
	if s := service.Describe(ClickHouse{}); len(s) != 1 || s[0].Name != EnvDSN {
		t.Fatalf("declared %+v, want %s", s, EnvDSN)
	}
	var c ClickHouse
	if err := service.Load(service.MapEnv(nil), &c); err != nil || c.DSN.String() != "clickhouse://127.0.0.1:9000/hinscore" {
		t.Fatalf("default %s (%v)", c.DSN, err)
	}
	if err := service.Load(service.MapEnv(map[string]string{EnvDSN: "clickhouse://w:pw@ch:9440/db?schema=check"}), &c); err != nil ||
		c.DSN != (DSN{Host: "ch", Port: 9440, Database: "db", User: "w", Password: "pw", CheckSchema: true}) {
		t.Fatalf("%+v (%v)", c.DSN, err)
	}
	err := service.Load(service.MapEnv(map[string]string{EnvDSN: "http://x:8123/"}), &c)
	if !errors.Is(err, ErrBadDSN) || !strings.Contains(err.Error(), EnvDSN+": chstore: bad DSN: scheme") {
		t.Fatalf("bad DSN: %v", err)
	}
}
