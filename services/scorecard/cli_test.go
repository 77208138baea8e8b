package scorecard

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/bustest"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/lib/service/servicetest"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// dsnString renders d for --clickhouse, password included (DSN.String
// leaves it out for logs).
func dsnString(d chstore.DSN) string {
	u := url.URL{Scheme: "clickhouse", Host: d.Addr(), Path: "/" + d.Database, User: url.UserPassword(d.User, d.Password)}
	return u.String()
}

// clearEnv keeps the caller's environment out of RunCLI's defaults.
func clearEnv(t *testing.T) {
	for _, name := range []string{EnvClickHouse, EnvAdminAddr, EnvEvery, EnvOut, EnvPeriods, EnvCloseAfter, bus.EnvNATSURL, bus.EnvStreams, bus.EnvStreamReplicas} {
		t.Setenv(name, "")
	}
}

func TestRunCLIOneShot(t *testing.T) {
	clearEnv(t)
	conn, d := chtest.Database(t)
	insert(t, conn, fixture())
	dsn := dsnString(d)

	t.Run("defaults to days", func(t *testing.T) {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		if err := RunCLI(context.Background(), []string{"--clickhouse", dsn, "--out", out}, &stdout, &stderr); err != nil {
			t.Fatalf("RunCLI: %v\n%s", err, stderr.String())
		}
		golden(t, "table-day.txt", stdout.Bytes())
		want := []string{"2026-11-22/alpha.json", "2026-11-22/beta.json", "2026-12-28/gamma.json",
			"2027-01-01/gamma.json", "2027-01-03/gamma.json", "2027-01-04/gamma.json"}
		if got := listFiles(t, out); !slices.Equal(got, want) {
			t.Errorf("files %q\nwant %q", got, want)
		}
	})

	t.Run("periods, network and range", func(t *testing.T) {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		args := []string{"--clickhouse", dsn, "--out", out, "--period", "week,month", "--network", "gamma",
			"--from", "2027-01-01T00:00:00Z", "--to", "2027-02-01T00:00:00Z"}
		if err := RunCLI(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("RunCLI: %v\n%s", err, stderr.String())
		}
		want := []string{"2026-W53/gamma.json", "2027-01/gamma.json", "2027-W01/gamma.json"}
		if got := listFiles(t, out); !slices.Equal(got, want) {
			t.Errorf("files %q\nwant %q", got, want)
		}
		// Header, one line per card: W53 (2 requests from 2027), W01, then
		// the month; the purposes' header, two lines per card (the
		// required-response line, then the one purpose of the fixture);
		// the messages with defects' header, one line per card and its
		// note; the feed completeness's header, one line per card and its
		// rule; the unequal-treatment line (none flagged); then the SLA and
		// formula footer.
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		if len(lines) != 24 || !strings.Contains(lines[16], "completeness") || !strings.HasPrefix(lines[20], "completeness: ") || !strings.Contains(lines[11], "with defects") || !strings.HasPrefix(lines[15], "messages with defects:") || !strings.Contains(lines[1], "2026-W53") || !strings.Contains(lines[3], "2027-01") ||
			!strings.Contains(lines[4], "purpose") || !strings.Contains(lines[5], "required response (treatment, individual_access)") ||
			!strings.Contains(lines[6], "unknown") ||
			!strings.HasPrefix(lines[21], "unequal treatment: 0 comparisons flagged") ||
			!strings.HasPrefix(lines[22], "SLA applied: patient_query 1m0s;") || !strings.HasPrefix(lines[23], "formula "+FormulaVersion+": ") {
			t.Errorf("table:\n%s", stdout.String())
		}
	})
}

// TestRunCLIRegeneratesOnePeriod regenerates one ISO week twice: the same
// files with the same numbers, each run recorded in the scorecards table.
func TestRunCLIRegeneratesOnePeriod(t *testing.T) {
	clearEnv(t)
	// The fixture's last request opens 2027-01-04; one more 90 s later
	// (its SLA + grace) closes the week ending there, with no margin.
	t.Setenv(EnvCloseAfter, "0s")
	conn, d := chtest.Database(t)
	insert(t, conn, append(fixture(), row{id(999), 1, "gamma", "patient_query", "fulfilled", "", time.Date(2027, 1, 4, 0, 1, 30, 0, time.UTC), ttf(1000)}))
	var runs [2][]byte
	for i := range runs {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		if err := RunCLI(context.Background(), []string{"--clickhouse", dsnString(d), "--out", out, "--period", "2026-W53"}, &stdout, &stderr); err != nil {
			t.Fatalf("RunCLI: %v\n%s", err, stderr.String())
		}
		if got := listFiles(t, out); !slices.Equal(got, []string{"2026-W53/gamma.json"}) {
			t.Fatalf("files %q", got)
		}
		b, err := os.ReadFile(filepath.Join(out, "2026-W53", "gamma.json"))
		if err != nil {
			t.Fatal(err)
		}
		var c hinscorev1.Scorecard
		if err := protojson.Unmarshal(b, &c); err != nil || c.GetRequests() != 3 || !c.GetClosed() {
			t.Fatalf("card %s: requests %d closed %v (%v)", c.GetPeriod(), c.GetRequests(), c.GetClosed(), err)
		}
		c.GeneratedAtMs = 0
		if runs[i], err = Marshal(&c); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(runs[0], runs[1]) {
		t.Errorf("regenerating 2026-W53 changed the card:\n%s\n%s", runs[0], runs[1])
	}
	var stored uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM scorecards WHERE period = '2026-W53'").Scan(&stored); err != nil || stored < 1 {
		t.Errorf("scorecards rows for 2026-W53: %d (%v)", stored, err)
	}
}

func TestRunCLIUsageErrors(t *testing.T) {
	clearEnv(t)
	const dsn = "clickhouse://127.0.0.1:1/hinscore"
	tests := []struct {
		name string
		args []string
		want string // the error must mention it
	}{
		{"unknown flag", []string{"--clickhouse", dsn, "--bogus"}, "bogus"},
		{"bad period", []string{"--clickhouse", dsn, "--period", "year"}, "--period"},
		{"repeated period", []string{"--clickhouse", dsn, "--period", "day,day"}, "--period"},
		{"missing DSN", nil, EnvClickHouse},
		{"bad DSN", []string{"--clickhouse", "http://127.0.0.1:8123/"}, "--clickhouse"},
		{"bad time", []string{"--clickhouse", dsn, "--from", "yesterday"}, "--from"},
		{"empty range", []string{"--clickhouse", dsn, "--from", "2027-01-02T00:00:00Z", "--to", "2027-01-01T00:00:00Z"}, "--to"},
		{"bad interval", []string{"--clickhouse", dsn, "--every", "soon"}, "every"},
		{"negative interval", []string{"--clickhouse", dsn, "--every", "-1m"}, "--every"},
		{"filter with every", []string{"--clickhouse", dsn, "--every", "1m", "--network", "alpha"}, "--network"},
		{"admin without every", []string{"--clickhouse", dsn, "--admin", "127.0.0.1:0"}, "--admin"},
		{"extra argument", []string{"--clickhouse", dsn, "day"}, "unexpected"},
		{"no such week", []string{"--clickhouse", dsn, "--period", "2026-W60"}, "--period"},
		{"period with range", []string{"--clickhouse", dsn, "--period", "2026-10", "--from", "2026-10-01T00:00:00Z"}, "--from"},
		{"period with every", []string{"--clickhouse", dsn, "--period", "2026-10", "--every", "1m"}, "--every"},
		{"bad source", []string{"--clickhouse", dsn, "--source", "cache"}, "--source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := RunCLI(context.Background(), tt.args, &stdout, &stderr)
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("RunCLI(%q) = %v, want ErrUsage", tt.args, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %s", err, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q on a usage error", stdout.String())
			}
		})
	}

	t.Run("help is not a usage error", func(t *testing.T) {
		err := RunCLI(context.Background(), []string{"-h"}, io.Discard, io.Discard)
		if !errors.Is(err, flag.ErrHelp) || errors.Is(err, ErrUsage) {
			t.Errorf("RunCLI(-h) = %v, want flag.ErrHelp", err)
		}
	})
	t.Run("unreachable server is not a usage error", func(t *testing.T) {
		err := RunCLI(context.Background(), []string{"--clickhouse", dsn, "--out", t.TempDir()}, io.Discard, io.Discard)
		if err == nil || errors.Is(err, ErrUsage) {
			t.Errorf("RunCLI against nothing = %v, want a non-usage error", err)
		}
	})
}

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// serviceWorld is what the service mode runs against: an embedded NATS
// without streams (NATS_URL) and a database holding fixture().
func serviceWorld(t *testing.T) (jetstream.JetStream, chstore.DSN) {
	t.Helper()
	clearEnv(t)
	natsURL, js := bustest.Start(t, nil)
	t.Setenv(bus.EnvNATSURL, natsURL)
	conn, d := chtest.Database(t)
	insert(t, conn, fixture())
	return js, d
}

func TestRunCLIService(t *testing.T) {
	_, d := serviceWorld(t)
	out := t.TempDir()
	admin := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	var stderr servicetest.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- RunCLI(ctx, []string{"--clickhouse", dsnString(d), "--every", "200ms", "--period", "day,month",
			"--out", out, "--admin", admin}, &stdout, &stderr)
	}()

	client := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get("http://" + admin + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// waitFor polls until check passes; RunCLI must not have returned.
	waitFor := func(what string, check func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !check() {
			select {
			case err := <-errc:
				t.Fatalf("RunCLI returned %v while waiting for %s\n%s", err, what, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in 15s\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("/healthz", func() bool { code, _ := get("/healthz"); return code == http.StatusOK })
	waitFor("/readyz", func() bool {
		code, body := get("/readyz")
		return code == http.StatusOK && strings.Contains(body, "clickhouse")
	})
	waitFor("two successful runs in /metrics", func() bool {
		_, body := get("/metrics")
		for _, n := range []string{"2", "3", "4", "5", "6", "7", "8", "9"} {
			if strings.Contains(body, `hinscore_scorecard_runs_total{result="success"} `+n+"\n") {
				return true
			}
		}
		return false
	})
	if _, err := os.Stat(filepath.Join(out, "2027-01", "gamma.json")); err != nil {
		t.Errorf("month card: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "2026-W47")); !os.IsNotExist(err) {
		t.Errorf("week cards written without week in --period: %v", err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("RunCLI after cancel: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("RunCLI did not return after its context was cancelled")
	}
	if code, _ := get("/healthz"); code != 0 {
		t.Errorf("/healthz still answers %d after RunCLI returned", code)
	}
	logs := stderr.String()
	for _, want := range []string{`"service":"scorecard"`, `"message":"scorecards written"`, `"message":"shutting down"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("service mode printed %q on stdout", stdout.String())
	}
}

// TestStandaloneServicePublishes runs the standalone service as
// bin/scorecard --every runs it, against an embedded NATS that has no
// stream yet: it creates the streams (HINSCORE_STREAMS=ensure) and
// publishes every closed card on SCORECARDS, the operator's copy, as the
// scorecard service of `hinscore up` does.
func TestStandaloneServicePublishes(t *testing.T) {
	js, d := serviceWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr servicetest.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- RunCLI(ctx, []string{"--clickhouse", dsnString(d), "--every", "1h", "--period", "day",
			"--out", t.TempDir(), "--admin", freeAddr(t)}, io.Discard, &stderr)
	}()
	// The fixture's latest event is 2027-01-04 00:00, every SLA 60 s with
	// 30 s of grace: the days up to 2027-01-01 are closed (TestRunOnce).
	want := []string{"2026-11-22/alpha", "2026-11-22/beta", "2026-12-28/gamma", "2027-01-01/gamma"}
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		select {
		case err := <-errc:
			t.Fatalf("RunCLI returned %v before publishing\n%s", err, stderr.String())
		default:
		}
		got = publishedCards(t, ctx, js)
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("SCORECARDS holds %q, want %q\n%s", got, want, stderr.String())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("RunCLI after cancel: %v\n%s", err, stderr.String())
	}
}

// publishedCards lists period/network of the operator's copies on
// SCORECARDS, sorted (none while the stream does not exist).
func publishedCards(t *testing.T, ctx context.Context, js jetstream.JetStream) []string {
	t.Helper()
	stream, err := js.Stream(ctx, bus.StreamScorecards)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var c hinscorev1.Scorecard
		if err := proto.Unmarshal(msg.Data, &c); err != nil {
			t.Fatal(err)
		}
		if c.GetCopy() != CopyOperator || !c.GetClosed() || msg.Subject != bus.ScorecardSubject(c.GetNetwork()) {
			t.Errorf("%s: copy %q closed %v", msg.Subject, c.GetCopy(), c.GetClosed())
		}
		out = append(out, c.GetPeriod()+"/"+c.GetNetwork())
	}
	slices.Sort(out)
	return out
}

// TestRunCLIOneNetworkKeepsOffenders regenerates one network's month after
// a run of every network: the analysts' offenders list of that month must
// still be the list of all networks, byte for byte, not the one network's.
func TestRunCLIOneNetworkKeepsOffenders(t *testing.T) {
	clearEnv(t)
	conn, d := chtest.Database(t)
	insertObs(t, conn, figuresWorld())
	out := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := RunCLI(context.Background(), append([]string{"--clickhouse", dsnString(d), "--out", out, "--period", "2026-05"}, args...), &stdout, &stderr); err != nil {
			t.Fatalf("RunCLI %q: %v\n%s", args, err, stderr.String())
		}
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, "2026-05", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	run()
	before := map[string][]byte{"offenders.csv": read("offenders.csv"), "offenders.html": read("offenders.html")}
	// Both flagged networks are on the list (north-1 and south-2).
	for _, want := range []string{"north-1", "south-2"} {
		if !bytes.Contains(before["offenders.csv"], []byte(want)) {
			t.Fatalf("offenders.csv of every network lacks %s:\n%s", want, before["offenders.csv"])
		}
	}
	for _, network := range []string{"east", "north"} {
		run("--network", network)
		for name, want := range before {
			if got := read(name); !bytes.Equal(got, want) {
				t.Errorf("--network %s rewrote %s:\n%s\nwant\n%s", network, name, got, want)
			}
		}
	}
}
