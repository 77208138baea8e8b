package chschema

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hinscore/hinscore/schemas"
)

// TestCommittedSchemaIsCurrent fails when deploy/clickhouse/cluster/schema.sql
// no longer is what the migrations of schemas/ generate.
func TestCommittedSchemaIsCurrent(t *testing.T) {
	want, err := Generate(schemas.ClickHouse, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../../../deploy/clickhouse/cluster/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/clickhouse/cluster/schema.sql is stale: run `go run ./cmd/deploygen` in services/harness/cluster")
	}
}

// TestEveryObjectIsDistributed checks the generated schema against the
// migrations: each table has its replicated local table and a Distributed
// one under the original name, each view and materialized view is there.
func TestEveryObjectIsDistributed(t *testing.T) {
	out, err := Generate(schemas.ClickHouse, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	gen := string(out)
	files, _ := schemas.ClickHouse.ReadDir("clickhouse")
	for _, f := range files {
		data, _ := schemas.ClickHouse.ReadFile("clickhouse/" + f.Name())
		for _, st := range split(string(data)) {
			switch m := createTable.FindStringSubmatch(strings.TrimSuffix(st.sql, ";")); {
			case m != nil:
				for _, want := range []string{
					"CREATE TABLE IF NOT EXISTS hinscore." + m[1] + "_local ON CLUSTER hinscore (",
					"ENGINE = Replicated" + m[3] + "('/clickhouse/tables/{shard}/hinscore/" + m[1] + "_local', '{replica}'",
					"CREATE TABLE IF NOT EXISTS hinscore." + m[1] + " ON CLUSTER hinscore AS hinscore." + m[1] + "_local\nENGINE = Distributed(hinscore, hinscore, " + m[1] + "_local, ",
				} {
					if !strings.Contains(gen, want) {
						t.Errorf("%s: generated schema lacks %q", f.Name(), want)
					}
				}
			case createView.MatchString(st.sql):
				name := createView.FindStringSubmatch(st.sql)[1]
				if !strings.Contains(gen, "CREATE VIEW IF NOT EXISTS hinscore."+name+" ON CLUSTER hinscore AS\n") {
					t.Errorf("%s: view %s missing", f.Name(), name)
				}
				if LocalViews[name] {
					// The shard-local form reads only the shard's own tables.
					head := "CREATE VIEW IF NOT EXISTS hinscore." + name + "_local ON CLUSTER hinscore AS\n"
					i := strings.Index(gen, head)
					if i < 0 {
						t.Errorf("%s: view %s has no shard-local form", f.Name(), name)
						break
					}
					body, _, _ := strings.Cut(gen[i+len(head):], ";")
					for _, from := range regexp.MustCompile(`\bFROM ([\w.]+)`).FindAllStringSubmatch(body, -1) {
						if !strings.HasSuffix(from[1], "_local") {
							t.Errorf("%s_local reads %s, not a shard-local table", name, from[1])
						}
					}
				}
			case createMV.MatchString(st.sql):
				m := createMV.FindStringSubmatch(st.sql)
				if !strings.Contains(gen, "CREATE MATERIALIZED VIEW IF NOT EXISTS hinscore."+m[1]+" ON CLUSTER hinscore TO hinscore."+m[2]+"_local AS\n") {
					t.Errorf("%s: materialized view %s missing", f.Name(), m[1])
				}
			}
		}
	}
}

func TestConvert(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string // substrings of the output
		err      error
	}{
		{
			name: "replacing table with version",
			in:   "CREATE TABLE IF NOT EXISTS scorecards (\n  network String,\n  v UInt64\n) ENGINE = ReplacingMergeTree(v)\nORDER BY network;",
			want: []string{
				"CREATE TABLE IF NOT EXISTS db.scorecards_local ON CLUSTER c (\n  network String,\n  v UInt64\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/scorecards_local', '{replica}', v)\nORDER BY network;",
				"CREATE TABLE IF NOT EXISTS db.scorecards ON CLUSTER c AS db.scorecards_local\nENGINE = Distributed(c, db, scorecards_local, cityHash64(network));",
			},
		},
		{
			name: "view keeps its body",
			in:   "CREATE VIEW IF NOT EXISTS events AS\nSELECT * FROM scorecards FINAL;",
			want: []string{"CREATE VIEW IF NOT EXISTS db.events ON CLUSTER c AS\nSELECT * FROM db.scorecards FINAL;"},
		},
		{
			name: "materialized view reads and feeds local tables",
			in:   "CREATE MATERIALIZED VIEW IF NOT EXISTS m TO scorecards AS\nSELECT network FROM scorecards;",
			want: []string{"CREATE MATERIALIZED VIEW IF NOT EXISTS db.m ON CLUSTER c TO db.scorecards_local AS\nSELECT network FROM db.scorecards_local;"},
		},
		{
			name: "added column",
			in:   "ALTER TABLE scorecards ADD COLUMN x String;",
			want: []string{"ALTER TABLE db.scorecards_local ON CLUSTER c ADD COLUMN x String;\n" +
				"DROP TABLE IF EXISTS db.scorecards ON CLUSTER c;\nCREATE TABLE IF NOT EXISTS db.scorecards ON CLUSTER c AS db.scorecards_local\n"},
		},
		{
			name: "sorting key of a table of record",
			in:   "ALTER TABLE scorecards ADD COLUMN x String, MODIFY ORDER BY (network, x);",
			err:  ErrUnsupported,
		},
		{
			name: "sorting key of a rebuilt table: created again with it",
			in: "CREATE TABLE IF NOT EXISTS outcomes_daily (network String,\n    n UInt64\n) ENGINE = AggregatingMergeTree()\nORDER BY (network);\n\n" +
				"ALTER TABLE outcomes_daily ADD COLUMN x String, MODIFY ORDER BY (network, x);",
			want: []string{"DROP TABLE IF EXISTS db.outcomes_daily_local ON CLUSTER c;\n" +
				"CREATE TABLE IF NOT EXISTS db.outcomes_daily_local ON CLUSTER c (network String,\n    n UInt64,\n    x String\n) " +
				"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/outcomes_daily_local', '{replica}')\nORDER BY (network, x);\n" +
				"DROP TABLE IF EXISTS db.outcomes_daily ON CLUSTER c;\n"},
		},
		{
			name: "view dropped to be created again",
			in:   "DROP TABLE IF EXISTS events;",
			want: []string{"DROP TABLE IF EXISTS db.events ON CLUSTER c;\n"},
		},
		{
			name: "view with a shard-local form dropped with it",
			in:   "DROP TABLE IF EXISTS outcomes;",
			want: []string{"DROP TABLE IF EXISTS db.outcomes ON CLUSTER c;\nDROP TABLE IF EXISTS db.outcomes_local ON CLUSTER c;\n"},
		},
		{name: "dropped table", in: "DROP TABLE IF EXISTS scorecards;", err: ErrUnsupported},
		{name: "table without a sharding key", in: "CREATE TABLE IF NOT EXISTS nowhere (a String) ENGINE = MergeTree() ORDER BY a;", err: ErrUnsupported},
		{
			name: "dropped column",
			in:   "ALTER TABLE scorecards ADD COLUMN x String;\nALTER TABLE scorecards DROP COLUMN x;",
			want: []string{"ALTER TABLE db.scorecards_local ON CLUSTER c DROP COLUMN x;\nDROP TABLE IF EXISTS db.scorecards ON CLUSTER c;\n"},
		},
		{name: "other alter", in: "ALTER TABLE scorecards UPDATE x = '' WHERE 1;", err: ErrUnsupported},
		{name: "alter of an unknown table", in: "ALTER TABLE elsewhere ADD COLUMN x String;", err: ErrUnsupported},
		{name: "view of an unknown table", in: "CREATE MATERIALIZED VIEW IF NOT EXISTS m TO scorecards AS\nSELECT a FROM elsewhere;", err: ErrUnsupported},
	}
	o := Options{Cluster: "c", Database: "db"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "CREATE TABLE IF NOT EXISTS scorecards (network String) ENGINE = MergeTree() ORDER BY network;\n\n" + tc.in + "\n"
			out, err := Generate(fstest.MapFS{"clickhouse/001_x.sql": {Data: []byte(src)}}, o)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
