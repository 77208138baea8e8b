package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// localClickHouse starts (or reuses) the local ClickHouse server through
// scripts/clickhouse.sh and returns its DSN.
func localClickHouse(ctx context.Context) (string, error) {
	script, err := findScript()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, script, "start")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("local ClickHouse: %s start: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	dsn := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(dsn, "clickhouse://") {
		return "", fmt.Errorf("local ClickHouse: %s printed %q, not a DSN", script, dsn)
	}
	return dsn, nil
}

// findScript looks for scripts/clickhouse.sh: HINSCORE_CLICKHOUSE_SCRIPT,
// then upwards from the working directory, then beside the binary (bin/..).
func findScript() (string, error) {
	if s := os.Getenv("HINSCORE_CLICKHOUSE_SCRIPT"); s != "" {
		return s, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			p := filepath.Join(d, "scripts", "clickhouse.sh")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("local ClickHouse: scripts/clickhouse.sh not found (run from the repository, pass --clickhouse DSN, or set HINSCORE_CLICKHOUSE_SCRIPT)")
}
