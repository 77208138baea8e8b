package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
)

// dashboardPanel is what the tests read of a panel of the dashboard.
type dashboardPanel struct {
	ID      int
	Title   string
	Targets []struct{ Expr, RawSQL string }
}

// readDashboard reads deploy's Grafana dashboard.
func readDashboard(t *testing.T) []dashboardPanel {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "observability", "grafana", "hinscore.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct{ Panels []dashboardPanel }
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	return dash.Panels
}

// expandMacros does what the Grafana ClickHouse data source does with the
// macros the panels use: $__timeFilter(col) becomes a range of whole
// seconds, $__interval_s the interval in seconds.
func expandMacros(sql string, from, to time.Time, interval time.Duration) string {
	sql = regexp.MustCompile(`\$__timeFilter\(([a-z_]+)\)`).ReplaceAllString(sql,
		fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", from.Unix(), to.Unix()))
	return strings.ReplaceAll(sql, "$__interval_s", fmt.Sprint(int(interval.Seconds())))
}

// dashboardOutcome is one outcome row the dashboard test writes.
type dashboardOutcome struct {
	kind, class, purpose, sides string
	untimed                     bool
	ttfMs                       uint64 // 0: none
}

// TestDashboardSQL runs every ClickHouse panel of the dashboard on a real
// ClickHouse (the server of HINSCORE_TEST_CLICKHOUSE_DSN, which may be
// 18.16) over outcomes written here, with Grafana's macros expanded, and
// checks the figures of the panels on the request kinds, the exchange
// purposes and the gateway sides seen.
func TestDashboardSQL(t *testing.T) {
	conn, _ := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Within the last day, which the older panels read (now() - INTERVAL 1 DAY).
	at := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Hour)
	rows := []dashboardOutcome{
		{"patient_discovery", "fulfilled", "treatment", "both", false, 900},
		{"patient_discovery", "fulfilled", "treatment", "initiating", true, 0},
		{"document_query", "not_found", "treatment", "both", false, 0},
		{"document_query", "refused_unjustified", "individual_access", "responding", true, 0},
		{"document_retrieve", "unanswered", "individual_access", "both", false, 0},
		{"document_retrieve", "fulfilled", "unknown", "initiating", true, 0},
		{"patient_query", "fulfilled", "unknown", "", false, 500},
		{"patient_query", "fulfilled_late", "payment", "", false, 200000}, // over 3x its 60 s SLA: suspect
		{"patient_query", "orphan", "unknown", "", false, 0},
		// An HL7 v2 QRY^T12: a document query, but no cross-community transaction.
		{"document_query", "fulfilled", "unknown", "", false, 700},
		// A retrieve whose record names no side: cross-community by its kind.
		{"document_retrieve", "fulfilled", "unknown", "", false, 700},
	}
	writeDashboardOutcomes(t, ctx, conn, at, rows)
	results := map[int][][]string{}
	for _, p := range readDashboard(t) {
		for _, tg := range p.Targets {
			if tg.RawSQL == "" {
				continue
			}
			sql := expandMacros(tg.RawSQL, at.Add(-time.Hour), at.Add(time.Hour), time.Minute)
			got, err := queryStrings(ctx, conn, sql)
			if err != nil {
				t.Errorf("panel %d %q: %v\n%s", p.ID, p.Title, err, sql)
				continue
			}
			if len(got) == 0 {
				t.Errorf("panel %d %q: no rows", p.ID, p.Title)
			}
			results[p.ID] = got
		}
	}
	checkPanel(t, results, 13, "Outcomes by request kind", [][]string{
		{"patient_discovery", "cross-community", "2", "2", "1", "0", "0", "0"},
		{"document_query", "cross-community", "2", "0", "0", "1", "1", "0.5"},
		{"document_retrieve", "cross-community", "3", "2", "0.6667", "0", "1", "0.3333"},
		{"patient_query", "HL7 v2 / FHIR", "2", "2", "1", "0", "1", "0.5"},
		{"document_query", "HL7 v2 / FHIR", "1", "1", "1", "0", "0", "0"},
	})
	checkPanel(t, results, 14, "Cross-community transactions: gateway records seen", [][]string{
		{"patient_discovery", "2", "1", "1", "0", "0", "0.5", "1", "2", "1"},
		{"document_query", "2", "1", "0", "1", "0", "0.5", "1", "0", "0"},
		{"document_retrieve", "3", "1", "1", "0", "1", "0.3333", "1", "2", "0.6667"},
	})
	checkPanel(t, results, 16, "Outcomes by exchange purpose", [][]string{
		{"required response", "treatment", "3", "2", "0.6667", "0", "0", "0", "0"},
		{"required response", "individual_access", "2", "0", "0", "1", "1", "2", "1"},
		{"other purposes", "unknown", "4", "4", "1", "0", "0", "0", "0"},
		{"other purposes", "payment", "1", "1", "1", "0", "0", "1", "1"},
	})
}

// checkPanel compares a table panel's rows with the expected ones.
func checkPanel(t *testing.T, results map[int][][]string, id int, title string, want [][]string) {
	t.Helper()
	if got := results[id]; !reflect.DeepEqual(got, want) {
		t.Errorf("panel %d %s:\n got %v\nwant %v", id, title, got, want)
	}
}

// writeDashboardOutcomes writes one outcome row each, a minute apart from
// at: the columns the panels read, the others left to their defaults.
func writeDashboardOutcomes(t *testing.T, ctx context.Context, conn driver.Conn, at time.Time, rows []dashboardOutcome) {
	t.Helper()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO exchange_outcomes (outcome_id, version, network, request_kind, outcome,
		requested_at, requested_at_ms, ttf_ms, sla_ms, purpose, sides, untimed)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		req := at.Add(time.Duration(i) * time.Minute)
		var ttf *uint64
		if r.ttfMs > 0 {
			ttf = &r.ttfMs
		}
		untimed := uint8(0)
		if r.untimed {
			untimed = 1
		}
		if err := b.Append(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), uint64(1), "qhin", r.kind, r.class,
			req, req.UnixMilli(), ttf, uint64(60000), r.purpose, r.sides, untimed); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// queryStrings runs a query and returns each row's values as text.
func queryStrings(ctx context.Context, conn driver.Conn, sql string) ([][]string, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := make([]string, len(dest))
		for i, d := range dest {
			row[i] = fmt.Sprint(reflect.ValueOf(d).Elem().Interface())
		}
		out = append(out, row)
	}
	return out, rows.Err()
}
