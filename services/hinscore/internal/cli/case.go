package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hinscore/hinscore/services/api"
	"github.com/hinscore/hinscore/services/api/casepacket"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/seal"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/scorecard"
)

// runCase is `hinscore case build` and `hinscore case verify`.
func runCase(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want case build ... or case verify ARCHIVE", errUsage)
	}
	switch args[0] {
	case "build":
		return runCaseBuild(ctx, args[1:], stdout, stderr)
	case "verify":
		return runCaseVerify(args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: case %q: want build or verify", errUsage, args[0])
}

// caseConfig is what building a packet reads from the environment: the
// raw keys that open the original messages (as the api's) and the key
// that signs.
type caseConfig struct {
	seal.Keys
	Case casepacket.SigningKey
}

// runCaseBuild builds the signed case packet of a responder in a period
// with the api's builder: openings recorded in AUDIT, the trail read back
// from it (a NATS user that may read AUDIT, as for `hinscore audit`).
func runCaseBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("case build", stderr)
	dsn := fs.String("clickhouse", "", "ClickHouse DSN (default "+chstore.EnvDSN+")")
	natsURL := fs.String("nats", natsFromEnv(), "NATS with RAW, EVENTS and AUDIT ("+bus.EnvNATSURL+"; a user that may read AUDIT)")
	responder := fs.String("responder", "", "the responder organisation (responder_org)")
	period := fs.String("period", "", "the period, as scorecards name it: 2026-10, 2026-W43 or 2026-10-05")
	out := fs.String("out", "", "the packet file to write (a tar archive)")
	reason := fs.String("reason", "", "why the original messages are opened, for the audit trail (default: the case packet's responder and period)")
	who := fs.String("who", currentUser(), "who builds the packet, for the audit trail")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *responder == "" || *period == "" || *out == "" {
		return fmt.Errorf("%w: want --responder ORG --period P --out FILE and no arguments", errUsage)
	}
	p, err := casePeriod(*period)
	if err != nil {
		return err
	}
	if *reason == "" {
		*reason = fmt.Sprintf("case packet of responder %s for %s", *responder, p.Label)
	}
	req := api.CaseRequest{Responder: *responder, Period: p, Who: *who, Role: api.RoleInvestigator, Reason: *reason, Remote: "cli"}
	if err := req.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var cfg caseConfig
	if err := service.Load(service.NewEnv(), &cfg); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cfg.Case.Require(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	conn, err := openCaseClickHouse(ctx, *dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	js, closeNATS, err := connectJetStream(*natsURL, "case")
	if err != nil {
		return err
	}
	defer closeNATS()
	b := api.NewCaseBuilder(conn, js, cfg.RawKeys, cfg.Case.Key, service.SystemClock{})
	var buf bytes.Buffer
	sum, err := b.Build(ctx, req, &buf)
	if errors.Is(err, api.ErrBadParam) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "case packet %s: responder %s, %s (%s to %s)\n", *out, sum.Responder, sum.Period, sum.PeriodStart, sum.PeriodEnd)
	fmt.Fprintf(stdout, "%d chains, %d violation units (%s), %d original messages, %d queries, %d audit entries; %d bytes\n",
		sum.Chains, sum.ViolationUnits, sum.ViolationRuleVersion, total(sum.Originals), sum.Queries, sum.AuditEntries, buf.Len())
	fmt.Fprintf(stdout, "public key: %s\n", sum.PublicKey)
	return nil
}

// casePeriod reads a period as the scorecards do (scorecard.ParsePeriod)
// and gives it their bounds.
func casePeriod(label string) (api.CasePeriod, error) {
	g, start, err := scorecard.ParsePeriod(label)
	if err != nil {
		return api.CasePeriod{}, fmt.Errorf("%w: --period: %v", errUsage, err)
	}
	name, end, err := scorecard.Period(g, start)
	if err != nil {
		return api.CasePeriod{}, fmt.Errorf("%w: --period: %v", errUsage, err)
	}
	return api.CasePeriod{Label: name, Start: start, End: end}, nil
}

// openCaseClickHouse opens the database a packet is built from: the
// flag's DSN or the environment's, its schema checked, never migrated.
func openCaseClickHouse(ctx context.Context, flagValue string) (driver.Conn, error) {
	d := flagValue
	if d == "" {
		d, _ = service.NewEnv().Lookup(chstore.EnvDSN)
	}
	if d == "" {
		return nil, fmt.Errorf("%w: --clickhouse or %s is required", errUsage, chstore.EnvDSN)
	}
	parsed, err := chstore.ParseDSN(d)
	if err != nil {
		return nil, fmt.Errorf("%w: --clickhouse: %v", errUsage, err)
	}
	parsed.CheckSchema = true
	return chstore.OpenDSN(ctx, parsed)
}

// writeFileAtomic writes data to path through a file beside it, so that a
// failed build leaves no partial packet.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".case-*.tar")
	if err != nil {
		return fmt.Errorf("case build: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("case build: %w", err)
	}
	return nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// runCaseVerify checks a packet: every digest and the signature, with the
// public key given (a key as build prints it, a PEM public key, or a file
// holding either) or else the one the packet names. Exit 1 naming what
// changed.
func runCaseVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("case verify", stderr)
	keyFlag := fs.String("public-key", "", "the signer's public key (base64 as case build prints it, PEM, or a file holding it); without it the packet's own key is used, which proves integrity but not who signed")
	if err := parseFlags(fs, reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want case verify ARCHIVE [--public-key KEY]", errUsage)
	}
	var trusted []byte
	if *keyFlag != "" {
		k, err := readPublicKey(*keyFlag)
		if err != nil {
			return fmt.Errorf("%w: --public-key: %v", errUsage, err)
		}
		trusted = k
	}
	path := fs.Arg(0)
	archive, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("case verify: %w", err)
	}
	rep, err := casepacket.Verify(archive, trusted)
	if err != nil {
		return fmt.Errorf("%s: NOT VERIFIED: %w", path, err)
	}
	m := rep.Manifest
	fmt.Fprintf(stdout, "%s: verified: %d members, %d bytes, every digest and the signature\n", path, rep.Members, rep.Bytes)
	signer := "the packet's own key (no --public-key given: integrity only, not who signed)"
	if trusted != nil {
		signer = "the given public key"
	}
	fmt.Fprintf(stdout, "signed by %s: %s\n", signer, m.PublicKey)
	fmt.Fprintf(stdout, "responder %s, period %s, generated %s by %s\n", m.Responder, m.Period, m.GeneratedAt, m.GeneratedBy)
	var sum api.CaseSummary
	if err := rep.ReadJSON("summary.json", &sum); err == nil {
		fmt.Fprintf(stdout, "%d chains, %d violation units (%s)\n", sum.Chains, sum.ViolationUnits, sum.ViolationRuleVersion)
	}
	return nil
}

// reorder puts flags before the archive, so that both
// "verify ARCHIVE --public-key K" and "verify --public-key K ARCHIVE" work.
func reorder(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			rest = append(rest, args[i+1:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && (a == "--public-key" || a == "-public-key") {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			rest = append(rest, a)
		}
	}
	return append(append(flags, "--"), rest...)
}

// readPublicKey reads a public key given as text, or from the file it names.
func readPublicKey(s string) ([]byte, error) {
	if k, err := casepacket.ParsePublicKey(s); err == nil {
		return k, nil
	}
	data, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("neither a public key nor a readable file: %w", err)
	}
	return casepacket.ParsePublicKey(string(data))
}
