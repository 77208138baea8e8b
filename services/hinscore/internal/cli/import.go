package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
)

// runImport stores HL7 v2 batch files and FHIR NDJSON files through the
// same path as the listeners (HL7 v2 into EVENTS with each event's
// original bytes, FHIR bodies into RAW and their events into EVENTS, bad
// input into DLQ; deterministic ids, so a re-import stores nothing twice),
// on the NATS of a running hinscore.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", stderr)
	network := fs.String("network", "", "network the files come from (required)")
	natsURL := fs.String("nats", natsFromEnv(), "NATS of the running hinscore ("+bus.EnvNATSURL+")")
	format := fs.String("format", "auto", "hl7v2, fhir (NDJSON), soap (one SOAP copy a file: an envelope or an MTOM package), atna (an AuditMessage or a syslog capture) or auto (JSON is FHIR, an AuditMessage or syslog capture ATNA, other XML or MIME SOAP, else HL7 v2)")
	sideName := fs.String("side", "initiating", "soap: the gateway whose copies the files are (initiating or responding)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := bus.ValidNetwork(*network); err != nil {
		return fmt.Errorf("%w: --network: %v", errUsage, err)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no FILE given", errUsage)
	}
	switch *format {
	case "hl7v2", "fhir", "soap", "atna", "auto":
	default:
		return fmt.Errorf("%w: --format %q: want hl7v2, fhir, soap, atna or auto", errUsage, *format)
	}
	side, err := parseSide(*sideName)
	if err != nil {
		return err
	}
	cfg, err := mllpingest.ConfigFromEnv(service.NewEnv())
	if err != nil {
		return err
	}
	js, closeNATS, err := connectJetStream(*natsURL, "import")
	if err != nil {
		return err
	}
	defer closeNATS()
	// The files' events are partitioned as the ingests' (and refused when
	// EVENTS records another count).
	streams := bus.DefaultStreamOptions()
	streams.Partitions = cfg.EventPartitions()
	if err := bus.EnsureStreams(ctx, js, streams); err != nil {
		return fmt.Errorf("import: NATS at %s: %w", *natsURL, err)
	}
	hl7, err := mllpingest.NewImporter(cfg, js, nil)
	if err != nil {
		return err
	}
	fhir := fhiringest.DefaultConfig()
	// The settings both ingests share, as mllp-ingest's configuration holds them.
	fhir.Partitioning, fhir.PatientTokens, fhir.Keys = cfg.Partitioning, cfg.PatientTokens, cfg.Keys
	audits := atnaingest.DefaultConfig()
	audits.Partitioning, audits.PatientTokens, audits.Keys = cfg.Partitioning, cfg.PatientTokens, cfg.Keys
	for _, path := range fs.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sniffed := ""
		if *format == "auto" {
			sniffed = crossCommunityFormat(data)
		}
		if *format == "atna" || sniffed == "atna" {
			if err := importAudits(ctx, stdout, js, audits, *network, path, data); err != nil {
				return err
			}
			continue
		}
		if *format == "soap" || sniffed == "soap" {
			ev, dup, err := fhiringest.ImportSOAP(ctx, js, fhir, *network, side, data)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			held := "stored"
			if dup {
				held = "already held"
			}
			fmt.Fprintf(stdout, "%s: %s %s %s, %s\n", path, ev.MessageType, ev.Role, ev.Status, held)
			continue
		}
		if *format == "fhir" || *format == "auto" && looksLikeJSON(data) {
			st, err := fhiringest.ImportNDJSON(ctx, js, fhir, *network, bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			fmt.Fprintf(stdout, "%s: %d lines, %d resources stored (%d events, %d already held), %d skipped, %d refused\n",
				path, st.Lines, st.Resources, st.Events, st.Duplicates, st.Skipped, st.Refused)
			for _, e := range st.Errors {
				fmt.Fprintf(stdout, "  line %d: %s %s\n", e.Line, e.Path, e.Msg)
			}
			if n := st.Unlisted(); n > 0 {
				fmt.Fprintf(stdout, "  %d more line(s) not listed\n", n)
			}
			continue
		}
		progress := progressLine(stderr, path)
		st, err := hl7.Import(ctx, *network, path, data, progress)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(stdout, "%s: %d messages, %d stored, %d refused (in the DLQ with the reason)\n", path, st.Messages, st.Stored, st.Rejected)
	}
	return nil
}

// importAudits stores the audit records of one capture through
// atna-ingest's path.
func importAudits(ctx context.Context, stdout io.Writer, js jetstream.JetStream, cfg atnaingest.Config, network, path string, data []byte) error {
	records, bare, err := auditCapture(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	st, err := atnaingest.Import(ctx, js, cfg, network, records, bare)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(stdout, "%s: %d audit records, %d stored, %d refused (in the DLQ with the reason)\n", path, st.Records, st.Stored, st.Rejected)
	return nil
}

// progressLine reports a long import every two seconds.
func progressLine(w io.Writer, name string) func(done, total int) {
	last := time.Now()
	return func(done, total int) {
		if done == total || time.Since(last) >= 2*time.Second {
			last = time.Now()
			fmt.Fprintf(w, "%s: %d/%d messages\n", name, done, total)
		}
	}
}

// runDirectory loads the organisation directory (CSV) into ClickHouse.
func runDirectory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("directory", stderr)
	dsn := fs.String("clickhouse", "", "ClickHouse DSN (default HINSCORE_CLICKHOUSE_DSN)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one CSV FILE (identifier,org_id,name,type,developer,networks[,home_community_ids])", errUsage)
	}
	d := *dsn
	if d == "" {
		d, _ = service.NewEnv().Lookup(chstore.EnvDSN)
	}
	if d == "" {
		return fmt.Errorf("%w: --clickhouse or HINSCORE_CLICKHOUSE_DSN is required", errUsage)
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	conn, parsed, err := chstore.Open(ctx, d)
	if err != nil {
		return err
	}
	defer conn.Close()
	n, err := chstore.LoadOrganizations(ctx, conn, f, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	fmt.Fprintf(stdout, "%d identifiers loaded into %s (view directory)\n", n, parsed)
	return nil
}

// natsFromEnv is NATS_URL as the services read it (bus.NATS): the
// default of the commands' --nats.
func natsFromEnv() string {
	var n bus.NATS
	_ = service.Load(service.NewEnv(), &n) // a bad HINSCORE_STREAMS does not concern a command
	return n.URL
}
