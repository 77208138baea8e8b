package chwriter_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/service"
)

// readEnvFile reads KEY=VALUE lines from testdata/config (# comments).
func readEnvFile(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "config", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", name, line)
		}
		m[k] = v
	}
	return m
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		file    string
		want    chwriter.Config
		wantErr []string // every variable the error must name
	}{
		{file: "empty.env", want: chwriter.DefaultConfig()},
		{file: "tuned.env", want: chwriter.Config{BatchRows: 20000, FlushInterval: 500 * time.Millisecond,
			Consumer: "chwriter-blue", AckWait: 5 * time.Minute, RetryMax: 10 * time.Second}},
		{file: "bad.env", wantErr: []string{"HINSCORE_CHWRITER_BATCH_ROWS", "HINSCORE_CHWRITER_FLUSH", "HINSCORE_CHWRITER_RETRY_MAX"}},
		{file: "invalid.env", wantErr: []string{"HINSCORE_CHWRITER_BATCH_ROWS", "HINSCORE_CHWRITER_CONSUMER",
			"HINSCORE_CHWRITER_ACK_WAIT", "HINSCORE_CHWRITER_RETRY_MAX"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := chwriter.ConfigFromEnv(service.MapEnv(readEnvFile(t, tt.file)))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ConfigFromEnv = %+v, want an error", got)
				}
				for _, name := range tt.wantErr {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("error %q does not name %s", err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ConfigFromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}
