package fhiringest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest/ingesttest"
)

// badLines writes n NDJSON lines that cannot be stored: valid resources
// that are not exchange events (skipped) and, every hundredth, a line
// that is not JSON (refused, dead-lettered).
func badLines(w *io.PipeWriter, n int) {
	bw := bufio.NewWriter(w)
	for i := 1; i <= n; i++ {
		if i%100 == 0 {
			fmt.Fprintf(bw, "{\"resourceType\":\"Task\",\"status\": %d\n", i)
			continue
		}
		fmt.Fprintf(bw, "{\"resourceType\":\"Patient\",\"id\":\"p%d\"}\n", i)
	}
	w.CloseWithError(bw.Flush())
}

// TestNDJSONManyBadLines: an NDJSON POST of 300,000 lines none of which
// can be stored keeps the text of the first MaxListedLines and counts
// the rest, so its memory stays bounded; the reply lists 100 lines and
// says how many more there were; the other network's resources are
// stored meanwhile.
func TestNDJSONManyBadLines(t *testing.T) {
	const n = 300_000
	h := newHarness(t, nil)
	pr, pw := io.Pipe()
	go badLines(pw, n)
	mem := ingesttest.StartMemoryPeak()
	type reply struct {
		status int
		oo     OperationOutcome
		err    error
	}
	done := make(chan reply, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, h.base+"/fhir/neta/", pr)
		req.Header.Set("Content-Type", "application/fhir+ndjson")
		req.Header.Set("Authorization", "Bearer "+tokenA)
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			done <- reply{err: err}
			return
		}
		defer resp.Body.Close()
		var r reply
		r.status, r.err = resp.StatusCode, json.NewDecoder(resp.Body).Decode(&r.oo)
		done <- r
	}()
	task := string(example(t, "task-requested.json"))
	stored := 0
	var r reply
wait:
	for i := 0; ; i++ {
		select {
		case r = <-done:
			break wait
		default:
		}
		if i > 0 {
			// Paced, so that what the bus holds of netb's Tasks (in this
			// process's memory) stays small beside the import.
			time.Sleep(10 * time.Millisecond)
		}
		body := strings.Replace(task, `"id": "cdex-task-1"`, fmt.Sprintf(`"id": "netb-task-%d"`, i), 1)
		if a := h.do(post{path: "/fhir/netb/Task", token: tokenB, body: []byte(body)}); a.status != http.StatusCreated {
			t.Fatalf("netb Task %d: %d %s", i, a.status, a.body)
		}
		stored++
	}
	mem.Check(t, fmt.Sprintf("NDJSON of %d bad lines", n), 16<<20)
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("NDJSON reply: %d %v", r.status, r.err)
	}
	listed, more := 0, ""
	for _, is := range r.oo.Issue {
		switch {
		case len(is.Location) > 0:
			listed++
		case strings.Contains(is.Diagnostics, "not listed"):
			more = is.Diagnostics
		}
	}
	if want := fmt.Sprintf("%d more line(s) not listed", n-MaxListedLines); listed != MaxListedLines || more != want {
		t.Errorf("reply lists %d lines and says %q; want %d and %q", listed, more, MaxListedLines, want)
	}
	summary := r.oo.Issue[0].Diagnostics
	if !strings.Contains(summary, fmt.Sprintf("%d skipped", n-n/100)) || !strings.Contains(summary, fmt.Sprintf("%d refused", n/100)) {
		t.Errorf("summary %q does not count every bad line", summary)
	}
	if got := len(h.streamMsgs("DLQ", "dlq.fhir-ingest")); got != n/100 {
		t.Errorf("DLQ holds %d, want every refused line (%d)", got, n/100)
	}
	byNet := map[string]int{}
	for _, ev := range h.events() {
		byNet[ev.Network]++
	}
	if stored == 0 || byNet["netb"] != stored || byNet["neta"] != 0 {
		t.Errorf("EVENTS holds %v, want netb's %d", byNet, stored)
	}
	t.Logf("netb: %d Tasks stored during the import", stored)
}
