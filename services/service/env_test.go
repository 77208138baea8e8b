package service

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

func loadEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

func TestEnvFromTestdata(t *testing.T) {
	env := MapEnv(loadEnvFile(t, "testdata/linker.env"))
	if got := env.Int("HINSCORE_PARTITIONS", 4); got != 8 {
		t.Errorf("Int = %d, want 8", got)
	}
	if got := env.Duration("HINSCORE_LATENESS", time.Second); got != 45*time.Second {
		t.Errorf("Duration = %v, want 45s", got)
	}
	if got := env.List("HINSCORE_LINKER_PARTITIONS", nil); strings.Join(got, "|") != "0|1|3" {
		t.Errorf("List = %q, want [0 1 3]", got)
	}
	if got := env.String("UNSET", "def"); got != "def" {
		t.Errorf("String default = %q", got)
	}
	if err := env.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
}

func TestEnvNamesEveryBadField(t *testing.T) {
	env := MapEnv(map[string]string{"A_INT": "four", "A_DUR": "10 parsecs"})
	env.Int("A_INT", 1)
	env.Duration("A_DUR", time.Second)
	env.Fail("A_OTHER", "must be positive")
	err := env.Err()
	if err == nil {
		t.Fatal("Err = nil, want the three problems")
	}
	for _, name := range []string{"A_INT", "A_DUR", "A_OTHER"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
