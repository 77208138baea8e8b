package chwriter_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service/servicetest"

	"github.com/hinscore/hinscore/services/chwriter"
	"github.com/hinscore/hinscore/services/lib/chstore"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		file    string
		want    chwriter.Config
		wantErr []string // every variable the error must name
	}{
		{file: "empty.env", want: chwriter.DefaultConfig()},
		{file: "tuned.env", want: chwriter.Config{BatchRows: 20000, FlushInterval: 500 * time.Millisecond,
			Consumer: "chwriter-blue", AckWait: 5 * time.Minute, RetryMax: 10 * time.Second,
			ContentRetries: 5, RollupEvery: 0, RollupShards: []chstore.DSN{
				{Host: "ch-0.clickhouse", Port: 9000, Database: "hinscore", User: "writer", Password: "s3cret"},
				{Host: "ch-1.clickhouse", Port: 9000, Database: "hinscore", User: "writer", Password: "s3cret"}},
			// Not in tuned.env: the defaults of the settings every service shares.
			ClickHouse: chwriter.DefaultConfig().ClickHouse, NATS: chwriter.DefaultConfig().NATS, Process: chwriter.DefaultConfig().Process}},
		{file: "bad.env", wantErr: []string{"HINSCORE_CHWRITER_BATCH_ROWS", "HINSCORE_CHWRITER_FLUSH", "HINSCORE_CHWRITER_RETRY_MAX"}},
		{file: "invalid.env", wantErr: []string{"HINSCORE_CHWRITER_BATCH_ROWS", "HINSCORE_CHWRITER_CONSUMER",
			"HINSCORE_CHWRITER_ACK_WAIT", "HINSCORE_CHWRITER_RETRY_MAX",
			"HINSCORE_CHWRITER_CONTENT_RETRIES", "HINSCORE_CHWRITER_ROLLUP_EVERY", "HINSCORE_CHWRITER_ROLLUP_SHARDS"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := chwriter.ConfigFromEnv(servicetest.ConfigFile(t, tt.file))
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
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ConfigFromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}
