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

	"github.com/hinscore/hinscore/services/fhir-ingest/fhirmap"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
)

// runInspect parses each file and prints one canonical ExchangeEvent per
// message as a JSON line, exactly as the ingest would publish it.
func runInspect(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", stderr)
	format := fs.String("format", "auto", "hl7v2, fhir (a resource, a Bundle or NDJSON) or auto (JSON is FHIR)")
	network := fs.String("network", "default", "network the messages are taken to come from")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no FILE given", errUsage)
	}
	switch *format {
	case "hl7v2", "fhir", "auto":
	default:
		return fmt.Errorf("%w: --format %q: want hl7v2, fhir or auto", errUsage, *format)
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
	marshal := protojson.MarshalOptions{UseProtoNames: true}
	// No ingest time: the output depends on the bytes alone.
	now := time.UnixMilli(0).UTC()
	for _, path := range fs.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		inspect := hl7.Inspect
		if *format == "fhir" || *format == "auto" && looksLikeJSON(data) {
			inspect = fhir.Inspect
		}
		events, err := inspect(path, *network, data, now)
		if err != nil {
			return err
		}
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
	}
	return nil
}

func looksLikeJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n\xef\xbb\xbf")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}
