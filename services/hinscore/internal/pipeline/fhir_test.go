package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
)

// task is a CDex-style record-request Task between a payer and a provider.
func task(id, version, status, extra string) string {
	return fmt.Sprintf(`{"resourceType":"Task","id":%q,"meta":{"versionId":%q},
"identifier":[{"system":"http://example.org/payer-tasks","value":%q}],
"status":%q,"intent":"order","authoredOn":"2026-03-02T09:00:00Z",
"for":{"identifier":{"system":"http://example.org/mrn","value":"MRN-12345"}},
"requester":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"9941339100"}},
"owner":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}}%s}`, id, version, "req-"+id, status, extra)
}

// TestFHIREndToEnd posts FHIR record-request Tasks and an AuditEvent over
// HTTP and checks the outcomes the linker derives, from ClickHouse.
func TestFHIREndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const token = "northstar-feed-token"
	opts := testOptions(t, []string{"northstar"})
	fhir := fhiringest.DefaultConfig()
	fhir.Addr = "127.0.0.1:0"
	fhir.Tokens = map[string][]string{"northstar": {fhiringest.HashToken(token)}}
	fhir.PatientKey, fhir.PatientKeyID = opts.Ingest.PatientKey, opts.Ingest.PatientKeyID
	opts.FHIR = &fhir
	p, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	posts := []struct {
		path, body string
		token      string
		want       int
	}{
		// Requested, then completed with an output: fulfilled.
		{"Task", task("t1", "1", "requested", ""), token, http.StatusCreated},
		{"Task", task("t1", "2", "completed", `,"lastModified":"2026-03-02T09:58:00Z","output":[{"type":{"coding":[{"code":"data-value"}]},"valueReference":{"reference":"DocumentReference/d1"}}]`), token, http.StatusCreated},
		// Requested, then rejected citing infeasibility: refused_exception.
		{"Task", task("t2", "1", "requested", ""), token, http.StatusCreated},
		{"Task", task("t2", "2", "rejected", `,"lastModified":"2026-03-02T09:30:00Z","statusReason":{"text":"Denied under 45 CFR 171.204 infeasibility"}`), token, http.StatusCreated},
		// Requested and never answered: unanswered once the watermark passes 24 h + grace.
		{"Task", task("t3", "1", "requested", ""), token, http.StatusCreated},
		// The same version again is stored once.
		{"Task", task("t3", "1", "requested", ""), token, http.StatusOK},
		// A wrong token is refused and stores nothing.
		{"Task", task("t4", "1", "requested", ""), "wrong", http.StatusUnauthorized},
	}
	base := "http://" + p.FHIRAddr() + "/fhir/northstar/"
	for i, post := range posts {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+post.path, strings.NewReader(post.body))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Authorization", "Bearer "+post.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != post.want {
			t.Fatalf("post %d: status %d, want %d", i, resp.StatusCode, post.want)
		}
	}
	if _, err := p.WaitStored(ctx, Counts{Events: 5, Outcomes: 3}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	got, err := p.Stored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != (Counts{Events: 5, Outcomes: 3}) {
		t.Fatalf("stored %+v, want 5 events and 3 outcomes", got)
	}
	classes, err := p.ClassCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"fulfilled": 1, "refused_exception": 1, "unanswered": 1}
	for class, n := range want {
		if classes["northstar"][class] != n {
			t.Errorf("%s: %d, want %d (all: %v)", class, classes["northstar"][class], n, classes["northstar"])
		}
	}
	conn, _ := p.ClickHouse()
	var exception string
	var ttf *uint64
	if err := conn.QueryRow(ctx, "SELECT exception_code FROM outcomes WHERE outcome = 'refused_exception'").Scan(&exception); err != nil {
		t.Fatal(err)
	}
	if exception != "171.204" {
		t.Errorf("refusal cites %q, want 171.204", exception)
	}
	if err := conn.QueryRow(ctx, "SELECT ttf_ms FROM outcomes WHERE outcome = 'fulfilled'").Scan(&ttf); err != nil {
		t.Fatal(err)
	}
	if ttf == nil || *ttf != 58*60*1000 {
		t.Errorf("time to fulfil %v, want 58 min", ttf)
	}
}
