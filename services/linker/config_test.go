package linker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/service/servicetest"
)

func TestConfigFromEnv(t *testing.T) {
	cases := []struct {
		file    string
		check   func(t *testing.T, c Config)
		wantErr []string // each must appear in the error
	}{
		{file: "defaults.env", check: func(t *testing.T, c Config) {
			if c.PartitionCount != 4 || len(c.Partitions) != 0 || c.Lateness != 30*time.Second ||
				c.Idle != 10*time.Second || c.Retention != 24*time.Hour || c.Consumer != "linker" ||
				c.ReplicaID != DefaultReplicaID() || c.LeaseTTL != 10*time.Second || c.CheckpointInterval != 5*time.Second ||
				c.CheckpointEvents != 100_000 || c.MaxPending != 500_000 || !c.dynamic() ||
				c.Window != DefaultWindow || c.SLAZone != DefaultSLAZone || c.SideWait != 15*time.Minute {
				t.Errorf("defaults: %+v", c)
			}
			if !slices.Equal(c.partitions(), []uint32{0, 1, 2, 3}) {
				t.Errorf("partitions %v, want all four", c.partitions())
			}
			r := newRules(c)
			for kind, want := range map[string]int64{
				"patient_query": 60_000, "document_query": 300_000, "referral": 72 * 3600_000,
				"order": 72 * 3600_000, "record_request": 24 * 3600_000, "patient_access": 30 * 24 * 3600_000,
				"unknown": 60_000, "patient_discovery": 60_000, "document_retrieve": 300_000,
			} {
				if l := r.limits("any", kind, ""); l.SLA != want || l.BusinessDays != 0 || l.Grace != 30_000 {
					t.Errorf("%s: limit %+v, want sla %d and grace 30000", kind, l, want)
				}
			}
		}},
		{file: "custom.env", check: func(t *testing.T, c Config) {
			if c.PartitionCount != 8 || !slices.Equal(c.partitions(), []uint32{1, 3}) || c.Lateness != time.Minute ||
				c.Idle != 2*time.Second || c.Retention != 48*time.Hour || c.Consumer != "linker-b" ||
				c.ReplicaID != "linker-b.2" || c.LeaseTTL != 20*time.Second || c.CheckpointInterval != 2*time.Second ||
				c.CheckpointEvents != 5000 || c.MaxPending != 1000 || c.dynamic() {
				t.Errorf("custom: %+v", c)
			}
			r := newRules(c)
			if c.SLAZone != "America/Chicago" || c.Window != 7*time.Minute || c.SideWait != time.Hour {
				t.Errorf("custom: zone %q window %s", c.SLAZone, c.Window)
			}
			for _, tc := range []struct {
				network, kind, purpose string
				sla                    int64
				days                   int
				grace                  int64
			}{
				{"netA", "patient_query", "", 45_000, 0, 10_000},
				{"netA", "referral", "", 48 * 3600_000, 0, 3600_000},
				{"netA", "order", "", 24 * 3600_000, 0, 30_000},
				{"netB", "order", "", 72 * 3600_000, 0, 30_000},
				{"netB", "document_query", "", 300_000, 0, 30_000},
				{"netB", "unknown", "", 45_000, 0, 10_000},
				// Business days, per kind and per purpose, the most specific key first.
				{"netB", "record_request", "treatment", 0, 10, 30_000},
				{"netB", "document_query", "individual_access", 0, 1, 2 * 3600_000},
				{"netA", "document_query", "individual_access", 0, 2, 2 * 3600_000},
				{"netA", "document_query", "treatment", 600_000, 0, 30_000},
				{"netB", "patient_discovery", "", 90_000, 0, 30_000},
				{"netB", "patient_discovery", "unknown", 90_000, 0, 30_000},
				{"netB", "patient_discovery", "payment", 60_000, 0, 30_000},
			} {
				if l := r.limits(tc.network, tc.kind, tc.purpose); l.SLA != tc.sla || l.BusinessDays != tc.days || l.Grace != tc.grace {
					t.Errorf("%s/%s@%s: limit %+v, want sla %d, %d business days, grace %d", tc.network, tc.kind, tc.purpose, l, tc.sla, tc.days, tc.grace)
				}
			}
		}},
		{file: "bad-values.env", wantErr: []string{
			"HINSCORE_PARTITIONS", "HINSCORE_LINKER_PARTITIONS: \"x\"", "HINSCORE_SLA", "HINSCORE_GRACE",
			"HINSCORE_LATENESS", "HINSCORE_IDLE", "HINSCORE_LINKER_LEASE_TTL", "HINSCORE_LINKER_CHECKPOINT_EVENTS",
		}},
		{file: "bad-replica.env", wantErr: []string{"HINSCORE_LINKER_REPLICA", "pod/1"}},
		{file: "bad-cap.env", wantErr: []string{"HINSCORE_LINKER_MAX_PENDING"}},
		{file: "bad-lease.env", wantErr: []string{"HINSCORE_LINKER_LEASE_TTL"}},
		{file: "bad-partition.env", wantErr: []string{"HINSCORE_LINKER_PARTITIONS", "outside 0..1"}},
		{file: "bad-sla.env", wantErr: []string{"HINSCORE_SLA", "referral"}},
		{file: "bad-sla-keys.env", wantErr: []string{"HINSCORE_SLA", "leisure", "a/b/c", "0bd", "1.5bd", "HINSCORE_GRACE", "@treatment"}},
		{file: "bad-zone.env", wantErr: []string{"HINSCORE_SLA_ZONE", "Mars/Olympus_Mons"}},
		{file: "bad-idle.env", wantErr: []string{"HINSCORE_IDLE"}},
		{file: "bad-duplicate.env", wantErr: []string{"HINSCORE_LINKER_PARTITIONS", "twice"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			c, err := ConfigFromEnv(servicetest.ConfigFile(t, tc.file))
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, config %+v", c)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
