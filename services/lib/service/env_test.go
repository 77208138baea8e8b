package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnvFromTestdata(t *testing.T) {
	env, err := EnvFile("testdata/linker.env")
	if err != nil {
		t.Fatal(err)
	}
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

func TestEnvFileRejectsLinesWithoutEquals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.env")
	if err := os.WriteFile(path, []byte("A=1\nnot a setting\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnvFile(path); err == nil || !strings.Contains(err.Error(), "bad.env:2") {
		t.Fatalf("EnvFile = %v, want an error naming bad.env:2", err)
	}
}

func TestNewEnvWithOverridesTheProcessEnvironment(t *testing.T) {
	t.Setenv("HINSCORE_TEST_A", "from-env")
	t.Setenv("HINSCORE_TEST_B", "from-env")
	env := NewEnvWith(map[string]string{"HINSCORE_TEST_A": "from-flag"})
	if got := env.String("HINSCORE_TEST_A", ""); got != "from-flag" {
		t.Errorf("override: %q", got)
	}
	if got := env.String("HINSCORE_TEST_B", ""); got != "from-env" {
		t.Errorf("process environment: %q", got)
	}
}
