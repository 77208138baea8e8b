package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/fhir-ingest/fhirmap"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
	soaptoevent "github.com/hinscore/hinscore/services/lib/soap/toevent"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
)

// runInspect parses each file and prints one canonical ExchangeEvent per
// message as a JSON line, exactly as the ingest would publish it.
func runInspect(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", stderr)
	format := fs.String("format", "auto", "hl7v2, fhir (a resource, a Bundle or NDJSON), soap (a SOAP copy: an envelope or an MTOM package), atna (an AuditMessage or a syslog capture) or auto (JSON is FHIR, an AuditMessage or syslog capture ATNA, other XML or MIME SOAP, else HL7 v2)")
	network := fs.String("network", "default", "network the messages are taken to come from")
	sideName := fs.String("side", "initiating", "soap: the gateway whose copy the files are (initiating or responding)")
	if err := parseFlags(fs, args); err != nil {
		return err
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
	if err := bus.ValidNetwork(*network); err != nil {
		return fmt.Errorf("%w: --network: %v", errUsage, err)
	}
	cfg, err := mllpingest.ConfigFromEnv(service.NewEnv())
	if err != nil {
		return err
	}
	hl7, err := cfg.Mapper()
	if err != nil {
		return err
	}
	fhir := fhirmap.NewMapper(cfg.PatientKey, cfg.PatientKeyID)
	soap := soapInspector(soaptoevent.NewMapper(cfg.PatientKey, cfg.PatientKeyID), side)
	audits := atnaInspector(cfg.PatientKey, cfg.PatientKeyID)
	marshal := protojson.MarshalOptions{UseProtoNames: true}
	// No ingest time: the output depends on the bytes alone.
	now := time.UnixMilli(0).UTC()
	for _, path := range fs.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var inspect inspector = hl7.Inspect
		sniffed := ""
		if *format == "auto" {
			sniffed = crossCommunityFormat(data)
		}
		switch {
		case *format == "soap" || sniffed == "soap":
			inspect = soap
		case *format == "atna" || sniffed == "atna":
			inspect = audits
		case *format == "fhir" || *format == "auto" && looksLikeJSON(data):
			inspect = fhir.Inspect
		}
		// What a file yields before a bad record is printed, then the error.
		events, err := inspect(path, *network, data, now)
		if perr := printEvents(stdout, path, events, marshal); perr != nil {
			return perr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// printEvents writes each event as one canonical JSON line.
func printEvents(stdout io.Writer, path string, events []*hinscorev1.ExchangeEvent, marshal protojson.MarshalOptions) error {
	for _, ev := range events {
		b, err := marshal.Marshal(ev)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		// protojson's spacing is deliberately unstable; compact it so the
		// output is canonical.
		var line bytes.Buffer
		if err := json.Compact(&line, b); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		line.WriteByte('\n')
		if _, err := stdout.Write(line.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func looksLikeJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n\xef\xbb\xbf")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}
