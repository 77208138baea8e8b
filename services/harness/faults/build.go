package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// binaries are the programs a Cluster runs: name → module directory.
var binaries = map[string]string{
	hinscore: "services/hinscore",
	Ingest:   "services/mllp-ingest",
	FHIR:     "services/fhir-ingest",
	ATNA:     "services/atna-ingest",
	Linker:   "services/linker",
	Writer:   "services/chwriter",
}

// BuildBinaries builds the cluster's programs from the repository at repo
// into dir (what `make build` puts in bin/), for a run without bin/.
func BuildBinaries(ctx context.Context, repo, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("faults.BuildBinaries: %w", err)
	}
	for name, mod := range binaries {
		cmd := exec.CommandContext(ctx, "go", "-C", filepath.Join(repo, mod), "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("faults.BuildBinaries %s: %w\n%s", name, err, out)
		}
	}
	return nil
}

// HaveBinaries reports whether dir holds every program a Cluster runs.
func HaveBinaries(dir string) bool {
	for name := range binaries {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}
