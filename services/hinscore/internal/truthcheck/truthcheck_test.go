package truthcheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeTruth(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReadDirByHeaderName: columns are found by name, in any order, with
// columns the reader does not know at the end; the optional columns of
// other request kinds apply when present.
func TestReadDirByHeaderName(t *testing.T) {
	dir := writeTruth(t, map[string]string{HL7TruthCSV: `"outcome","network","control_id","query_tag","requester","responder","exception_code","requested_at","answered_at","latency_ms","patient","runaround","out_of_order","new_column"
"fulfilled","north","N1","NQ1","CLINIC","HOSP","","2026-03-02T10:00:00.000Z","2026-03-02T10:00:01.250Z","1250","1^^^MPI","false","false","x"
"unanswered","north","N2","NQ2","CLINIC","HOSP","","2026-03-02T10:00:02.000Z","","","2^^^MPI","false","false","y"
`})
	truth, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(truth.Requests) != 2 {
		t.Fatalf("%d requests", len(truth.Requests))
	}
	a, b := truth.Requests[0], truth.Requests[1]
	if a.ID != "N1" || a.Class != "fulfilled" || a.TTFMs != 1250 || a.TTAMs != 1250 || a.Records != 1 || a.Kind != "patient_query" ||
		!a.RequestedAt.Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("first row: %+v", a)
	}
	if b.TTFMs != -1 || b.TTAMs != -1 || b.Records != 0 {
		t.Errorf("unanswered row: %+v", b)
	}

	dir = writeTruth(t, map[string]string{HL7TruthCSV: `"network","control_id","requester","responder","outcome","exception_code","requested_at","latency_ms","patient","request_kind","tta_ms","record_count","sla_ms"
"north","O1","CLINIC","LAB","fulfilled","","2026-03-02T10:00:00.000Z","3600000","1^^^MPI","order","400","3","259200000"
`})
	if truth, err = ReadDir(dir); err != nil {
		t.Fatal(err)
	}
	if q := truth.Requests[0]; q.Kind != "order" || q.Records != 3 || q.TTAMs != 400 || q.TTFMs != 3600000 || q.SLAMs != 259200000 {
		t.Errorf("row with the optional columns: %+v", q)
	}
}

// TestReadDirRefuses: a directory without truth, a missing column and a
// bad time are errors naming what is wrong.
func TestReadDirRefuses(t *testing.T) {
	if _, err := ReadDir(t.TempDir()); !errors.Is(err, ErrNoTruth) {
		t.Errorf("empty directory: %v", err)
	}
	for name, body := range map[string]string{
		"no outcome column": "network,control_id\nnorth,N1\n",
		"bad time":          "network,control_id,requester,responder,outcome,exception_code,requested_at,latency_ms,patient\nnorth,N1,C,H,fulfilled,,yesterday,5,1^^^M\n",
	} {
		_, err := ReadDir(writeTruth(t, map[string]string{HL7TruthCSV: body}))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCompareReportsEachField: a matched outcome that differs in class,
// latency and request time gives one difference each; a request without
// an outcome and an outcome without a request are reported too.
func TestCompareReportsEachField(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	truth := &Truth{Requests: []Request{
		{Network: "north", Feed: FeedMLLP, ID: "N1", Kind: "patient_query", Requester: "C", Responder: "H", Class: "fulfilled",
			Records: 1, RequestedAt: at, TTAMs: 1250, TTFMs: 1250},
		{Network: "north", Feed: FeedMLLP, ID: "N2", Kind: "patient_query", Class: "unanswered", RequestedAt: at, TTAMs: -1, TTFMs: -1},
	}}
	ttf, tta := uint64(2250), uint64(1250)
	stored := []Outcome{
		{Network: "north", RequestID: "N1", Kind: "patient_query", Requester: "C", Responder: "H", Class: "refused_unjustified",
			Records: 1, RequestedAtMs: at.UnixMilli() + 1, TTAMs: &tta, TTFMs: &ttf},
		{Network: "north", RequestID: "N9", Class: "orphan"},
	}
	rep := Compare(truth, stored, nil)
	var got []string
	for _, d := range rep.Differences {
		got = append(got, d.ID+" "+d.Field)
	}
	want := "N1 class,N1 ttf,N1 requested at,N2 outcome,N9 request"
	if strings.Join(got, ",") != want {
		t.Errorf("differences %v, want %s", got, want)
	}
	if rep.OK() || rep.Confusion["north"]["fulfilled"]["refused_unjustified"] != 1 || rep.Confusion["north"][NoClass]["orphan"] != 1 {
		t.Errorf("confusion %v", rep.Confusion)
	}
	var b strings.Builder
	if err := rep.PrintClasses(&b); err != nil || !strings.Contains(b.String(), "NO") {
		t.Errorf("class table (%v):\n%s", err, b.String())
	}
}
