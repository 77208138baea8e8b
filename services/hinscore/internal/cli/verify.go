package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/hinscore/hinscore/services/hinscore/internal/truthcheck"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/domain/patient"
	"github.com/hinscore/hinscore/services/lib/service"
)

// errMismatch is the error of a check that found differences (exit 1).
type errMismatch struct{ differences int }

func (e errMismatch) Error() string {
	return fmt.Sprintf("%d differences between the stored outcomes and the simulator's truth", e.differences)
}

// runVerify compares the outcomes a database holds with a simulator truth
// directory: the class table, each network's confusion matrix and every
// difference; an error (exit 1) on any.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", stderr)
	dsn := fs.String("clickhouse", "", "ClickHouse DSN (default HINSCORE_CLICKHOUSE_DSN)")
	dir := fs.String("truth", "", "the simulator's truth directory (truth.csv and/or xca_truth.csv with xca_truth.json), e.g. out/truth")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: want --truth DIR and no arguments", errUsage)
	}
	d := *dsn
	if d == "" {
		d, _ = service.NewEnv().Lookup(chstore.EnvDSN)
	}
	if d == "" {
		return fmt.Errorf("%w: --clickhouse or HINSCORE_CLICKHOUSE_DSN is required", errUsage)
	}
	truth, err := truthcheck.ReadDir(*dir)
	if err != nil {
		return err
	}
	parsed, err := chstore.ParseDSN(d)
	if err != nil {
		return fmt.Errorf("%w: --clickhouse: %v", errUsage, err)
	}
	// Verify only reads: it checks the schema, never creates or migrates.
	parsed.CheckSchema = true
	conn, err := chstore.OpenDSN(ctx, parsed)
	if err != nil {
		return err
	}
	defer conn.Close()
	stored, err := truthcheck.ReadOutcomes(ctx, conn)
	if err != nil {
		return err
	}
	// The patient key the pipeline used narrows the matching of
	// cross-community transactions to their patient; without it they are
	// matched by kind, responder and time alone.
	var key []byte
	if k, ok := service.NewEnv().Lookup("HINSCORE_PATIENT_KEY"); ok && k != "" {
		key = patient.ParseKey(k)
	}
	rep := truthcheck.Compare(truth, stored, key)
	return printVerification(stdout, rep, true)
}

// printVerification prints the class table (and, with confusion or on a
// mismatch, the confusion matrices) and every difference; it returns
// errMismatch when there is any.
func printVerification(w io.Writer, rep *truthcheck.Report, confusion bool) error {
	if err := rep.PrintClasses(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if confusion || !rep.OK() {
		if err := rep.PrintConfusion(w); err != nil {
			return err
		}
	}
	if err := rep.PrintDifferences(w); err != nil {
		return err
	}
	if !rep.OK() {
		return errMismatch{len(rep.Differences)}
	}
	return nil
}
