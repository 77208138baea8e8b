package truthref

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ReadSLAs reads the SLA of each request kind the simulator applied from
// a truth directory: truth.json's sla_ms (the HL7 v2 patient queries) and
// xca_truth.json's sla_ms (per cross-community kind); either may be absent.
func ReadSLAs(dir string) (map[string]int64, error) {
	out := map[string]int64{}
	var hl7 struct {
		SLAMs int64 `json:"sla_ms"`
	}
	switch err := readJSON(filepath.Join(dir, "truth.json"), &hl7); {
	case err == nil:
		out["patient_query"] = hl7.SLAMs
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	var xca struct {
		SLAMs map[string]int64 `json:"sla_ms"`
	}
	switch err := readJSON(filepath.Join(dir, "xca_truth.json"), &xca); {
	case err == nil:
		for kind, ms := range xca.SLAMs {
			out[kind] = ms
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("truthref: %s: %w", path, err)
	}
	return nil
}
