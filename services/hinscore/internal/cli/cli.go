// Package cli implements the hinscore command line (ARCHITECTURE.md lists
// the commands operators and scripts rely on).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/hinscore/hinscore/services/api"
	"github.com/hinscore/hinscore/services/scorecard"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = ""

const usage = `hinscore measures how health information networks answer requests for patient records.

Usage:
  hinscore up        [--clickhouse DSN] [--mllp NETWORK=HOST:PORT]... [--atna NETWORK=HOST:PORT]... [--fhir HOST:PORT]
                     [--api HOST:PORT] [--data DIR] [--nats HOST:PORT] [--admin HOST:PORT] [--out DIR]
  hinscore demo      [--requests N] [--journeys J] [--seed S] [--out DIR] [--clickhouse DSN]
  hinscore inspect   [--format hl7v2|fhir|auto] [--network N] FILE...   one ExchangeEvent JSON line per message
  hinscore import    --network N [--nats URL] [--format hl7v2|fhir|auto] FILE...   HL7 batch files, FHIR NDJSON
  hinscore directory [--clickhouse DSN] FILE                        load the organisation directory (CSV)
  hinscore scorecard [--clickhouse DSN] [--period 2026-10|2026-W43|2026-10-05|day,week,month] [--network N] [--out DIR] [--every D]
  hinscore verify    --truth DIR [--clickhouse DSN]      every stored outcome against the simulator's truth (exit 1 on a difference)
  hinscore chain ID | journey TOKEN | offenders [--api URL] [--token-file F] [--json]   investigator views (via the API)
  hinscore audit     [--nats URL] [--network N] [--since 72h|RFC3339] [--who NAME] [--json]   who opened which original messages, and why
  hinscore case build  --responder ORG --period 2026-10|2026-W43|2026-10-05 --out FILE [--clickhouse DSN] [--nats URL] [--reason TEXT]
                     the signed case packet of a responder in a period (key: HINSCORE_CASE_SIGNING_KEY_FILE)
  hinscore case verify ARCHIVE [--public-key KEY]       every digest and the signature (exit 1 naming what changed)
  hinscore nats      [--data DIR] [--addr HOST:PORT]      the embedded NATS JetStream server alone
  hinscore version

DSN: clickhouse://HOST:PORT/DATABASE (also from HINSCORE_CLICKHOUSE_DSN); without
one, up and demo start a local ClickHouse through scripts/clickhouse.sh.
Run "hinscore COMMAND --help" for a command's flags.
`

// errUsage marks an error the user made on the command line (exit 2).
var errUsage = errors.New("usage")

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "up":
		err = runUp(ctx, args[1:], stdout, stderr)
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "verify":
		err = runVerify(ctx, args[1:], stdout, stderr)
	case "inspect":
		err = runInspect(ctx, args[1:], stdout, stderr)
	case "import":
		err = runImport(ctx, args[1:], stdout, stderr)
	case "directory":
		err = runDirectory(ctx, args[1:], stdout, stderr)
	case "chain", "journey", "offenders":
		err = api.RunClientCLI(ctx, args[0], args[1:], stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], stdout, stderr)
	case "case":
		err = runCase(ctx, args[1:], stdout, stderr)
	case "nats":
		err = runNATS(ctx, args[1:], stdout, stderr)
	case "scorecard":
		err = scorecard.RunCLI(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "hinscore", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "hinscore: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage), errors.Is(err, scorecard.ErrUsage), errors.Is(err, api.ErrUsage):
		fmt.Fprintf(stderr, "hinscore %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "hinscore %s: %v\n", args[0], err)
		return 1
	}
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if rev != "" {
			return "dev-" + rev[:min(12, len(rev))] + dirty + " (" + bi.GoVersion + ")"
		}
		return "dev (" + bi.GoVersion + ")"
	}
	return "dev"
}

// listenerFlag collects repeated --mllp (or --atna) NETWORK=HOST:PORT.
type listenerFlag []string

func (l *listenerFlag) String() string     { return strings.Join(*l, ",") }
func (l *listenerFlag) Set(v string) error { *l = append(*l, v); return nil }

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hinscore "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
