package chwriter_test

import (
	"strings"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// TestNoMessageTextInTables writes refusals whose senders' reasons name the
// patient (ERR-8 text, a FHIR diagnostics line, an audit's
// EventOutcomeDescription) and reads back every table and view of the
// database: the words are nowhere, while the codes, the cited exception and
// the redirect kind decided from them are stored.
func TestNoMessageTextInTables(t *testing.T) {
	h := newHarness(t)
	h.startWriter(testConfig(), nil)
	words := []string{
		"Jane Q Doe DOB 1961-04-02: no consent on file",
		"Patient JOHN SMITH born 03/14/1950 not releasable under 45 CFR 171.202",
		"Mrs Alvarez asked to fax 555-0100 instead",
	}
	for i, w := range words {
		ev := genEvent(i + 1)
		ev.Role, ev.Status, ev.AckCode, ev.ReasonText = hinscorev1.Role_ROLE_RESPONSE, hinscorev1.Status_STATUS_REFUSED, "AR", w
		ev.ReasonCodes = []string{"HL70357|207"}
		ev.ExceptionCode = []string{"", "171.202", "redirect-fax"}[i]
		h.publish(eventMsg(t, ev))
	}
	h.waitCount("SELECT count() FROM events", uint64(len(words)), waitRows)
	var dump strings.Builder
	rows, err := h.conn.Query(h.ctx, `SELECT name FROM system.tables WHERE database = currentDatabase()
		AND engine NOT IN ('AggregatingMergeTree', 'MaterializedView') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, name := range tables {
		dumpRows(t, h, &dump, "SELECT * FROM "+name)
	}
	for _, needle := range []string{"Jane", "1961-04-02", "JOHN SMITH", "03/14/1950", "Alvarez", "555-0100"} {
		if strings.Contains(dump.String(), needle) {
			t.Errorf("%q of a sender's reason is stored (tables and views %v)", needle, tables)
		}
	}
	for _, want := range []string{`exception_code="171.202"`, `exception_code="redirect-fax"`, `reason_codes="[HL70357|207]"`, `ack_code="AR"`} {
		if !strings.Contains(dump.String(), want) {
			t.Errorf("the classification is lost: no %s in\n%s", want, dump.String())
		}
	}
}
