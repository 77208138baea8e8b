package toevent

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestMapGolden maps every sample (the exchange patterns of DOMAIN.md's
// HL7 table here, and the parser's real-world samples) through the
// organisation directory, one canonical JSON line per event.
func TestMapGolden(t *testing.T) {
	dir, err := LoadDirectory("testdata/orgs.csv")
	if err != nil {
		t.Fatal(err)
	}
	mp := mapper
	mp.Orgs = dir
	samples, _ := filepath.Glob("testdata/samples/*.hl7")
	parsed, _ := filepath.Glob("../testdata/parse/*.hl7")
	batches, _ := filepath.Glob("../testdata/batch/*.hl7")
	files := append(append(samples, parsed...), batches...)
	if len(samples) == 0 || len(parsed) == 0 {
		t.Fatal("no samples")
	}
	marshal := protojson.MarshalOptions{UseProtoNames: true}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			evs, err := mp.InspectFile(file, "neta", ingest)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			for _, ev := range evs {
				j, err := marshal.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Compact(&b, j); err != nil {
					t.Fatal(err)
				}
				b.WriteByte('\n')
			}
			golden := filepath.Join("testdata/golden", strings.TrimSuffix(filepath.Base(file), ".hl7")+".jsonl")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("differs from %s (run with -update to accept):\n%s", golden, b.String())
			}
		})
	}
}
