package faults

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

var identRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// DSN is the part of clickhouse://HOST:PORT/DATABASE the harness needs.
type DSN struct {
	Addr     string
	Database string
}

// ParseDSN reads clickhouse://HOST:PORT/DATABASE (no credentials: the
// harness only talks to local test servers).
func ParseDSN(s string) (DSN, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
		return DSN{}, fmt.Errorf("faults.ParseDSN: %q is not clickhouse://HOST:PORT/DATABASE", s)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = "hinscore"
	}
	if !identRE.MatchString(db) {
		return DSN{}, fmt.Errorf("faults.ParseDSN: database %q is not [A-Za-z0-9_]+", db)
	}
	return DSN{Addr: u.Host, Database: db}, nil
}

// WithDatabase returns the DSN of another database on the same server.
func (d DSN) WithDatabase(db string) DSN { d.Database = db; return d }

func (d DSN) String() string { return "clickhouse://" + d.Addr + "/" + d.Database }

// Port is the server's native port.
func (d DSN) Port() string { return d.Addr[strings.LastIndexByte(d.Addr, ':')+1:] }

// Connect opens a native-protocol connection to the DSN's server with the
// given default database.
func Connect(ctx context.Context, d DSN, database string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{d.Addr}, Auth: clickhouse.Auth{Database: database},
		DialTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("faults.Connect: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("faults.Connect %s: %w", d.Addr, err)
	}
	return conn, nil
}

// DropDatabase removes a scenario's database.
func DropDatabase(ctx context.Context, d DSN) error {
	conn, err := Connect(ctx, d, "default")
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Database); err != nil {
		return fmt.Errorf("faults.DropDatabase %s: %w", d.Database, err)
	}
	return nil
}

// ClickHouseServer is a private ClickHouse started by scripts/clickhouse.sh
// in a directory of its own, so that a scenario may stop it.
type ClickHouseServer struct {
	script string
	home   string
	dsn    DSN
	// proc is set when the harness restarted the server itself (on the
	// same port, which scripts/clickhouse.sh start would change).
	proc *exec.Cmd
	done chan struct{}
}

// StartClickHouse starts a private server with scripts/clickhouse.sh
// (repo is the repository root) and data under home.
func StartClickHouse(ctx context.Context, repo, home string) (*ClickHouseServer, error) {
	s := &ClickHouseServer{script: filepath.Join(repo, "scripts", "clickhouse.sh"), home: home}
	out, err := s.run(ctx, "start")
	if err != nil {
		return nil, err
	}
	d, err := ParseDSN(strings.TrimSpace(out))
	if err != nil {
		return nil, err
	}
	s.dsn = d
	return s, nil
}

func (s *ClickHouseServer) run(ctx context.Context, verb string) (string, error) {
	cmd := exec.CommandContext(ctx, s.script, verb)
	cmd.Env = append(os.Environ(), "HINSCORE_CH_HOME="+s.home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("faults: clickhouse.sh %s: %w: %s", verb, err, stderr.String())
	}
	return string(out), nil
}

// DSN is the server's DSN (database hinscore).
func (s *ClickHouseServer) DSN() DSN { return s.dsn }

// Stop stops the server by its recorded PID (clickhouse.sh stop).
func (s *ClickHouseServer) Stop(ctx context.Context) error {
	_, err := s.run(ctx, "stop")
	if s.done != nil {
		<-s.done
		s.proc, s.done = nil, nil
	}
	return err
}

// Restart starts the stopped server again with its existing
// configuration, on the same port, and records its PID where
// clickhouse.sh stop finds it.
func (s *ClickHouseServer) Restart(ctx context.Context) error {
	log, err := os.OpenFile(filepath.Join(s.home, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("faults.ClickHouseServer.Restart: %w", err)
	}
	cmd := exec.Command("clickhouse-server", "--config-file="+filepath.Join(s.home, "etc", "config.xml"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.home, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("faults.ClickHouseServer.Restart: %w", err)
	}
	s.proc, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); log.Close(); close(done) }(s.done)
	if err := os.WriteFile(filepath.Join(s.home, "server.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("faults.ClickHouseServer.Restart: %w", err)
	}
	return waitFor(ctx, 60*time.Second, "ClickHouse answers again", func() bool {
		conn, err := Connect(ctx, s.dsn, "default")
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}
