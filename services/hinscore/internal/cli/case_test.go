package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/api"
	"github.com/hinscore/hinscore/services/api/casepacket"
	"github.com/hinscore/hinscore/services/harness/simulator"
	"github.com/hinscore/hinscore/services/hinscore/internal/pipeline"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/chstore/chtest"
	"github.com/hinscore/hinscore/services/scorecard"
)

// caseDay is the simulated day of the case packet test: in the past, so
// that every request is decided.
var caseDay = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// caseWorld is the simulator's traffic run through the composed pipeline
// (with the api), with scorecards, and the keys of the test.
type caseWorld struct {
	run     *demoRun
	p       *pipeline.Pipeline
	dsn     string
	keyFile string
	public  string
	api     string
	dir     string
}

const (
	caseInvestigatorToken = "case-test-investigator-token"
	caseAnalystToken      = "case-test-analyst-token"
)

func newCaseWorld(t *testing.T) *caseWorld {
	t.Helper()
	_, d := chtest.EmptyDatabase(t)
	hl7, err := simulator.Generate(simulator.Config{Requests: 60, Seed: 25, Start: caseDay.Add(-24 * time.Hour), Span: 12 * time.Hour, FHIRToken: demoFHIRToken})
	if err != nil {
		t.Fatal(err)
	}
	xca, err := simulator.GenerateXCA(simulator.XCAConfig{Journeys: 240, Seed: 25, Start: caseDay.Add(9 * time.Hour), Span: demoXCASpan, LateMax: demoXCALateMax})
	if err != nil {
		t.Fatal(err)
	}
	w := &caseWorld{run: &demoRun{hl7: hl7, xca: xca}, dsn: d.String(), dir: t.TempDir()}
	w.keyFile = filepath.Join(w.dir, "case.key")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := casepacket.NewPrivateKey(priv)
	pemKey, err := key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	w.public = key.Public()
	t.Setenv("HINSCORE_RAW_KEYS", demoRawKeys)
	t.Setenv(casepacket.EnvSigningKeyFile, w.keyFile)
	t.Setenv("HINSCORE_CLICKHOUSE_DSN", "")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	opts, err := demoOptions(ctx, upFlags{clickhouse: w.dsn, data: filepath.Join(w.dir, "data"), admin: "127.0.0.1:0"}, w.run, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	opts.ClickHouse = d
	if opts.Scorecard != nil {
		opts.Scorecard.Out = filepath.Join(w.dir, "out")
	}
	apiCfg := api.DefaultConfig()
	apiCfg.Addr, apiCfg.AuditLog = "127.0.0.1:0", filepath.Join(w.dir, "api-audit.jsonl")
	if err := api.ParseTokens("ivy=investigator:"+api.HashToken(caseInvestigatorToken)+",ann=analyst:"+api.HashToken(caseAnalystToken), apiCfg.Tokens); err != nil {
		t.Fatal(err)
	}
	apiCfg.Case.Key = key
	opts.API = &apiCfg
	w.p, err = pipeline.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := w.p.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	if err := demoSend(ctx, w.p, w.run, 3*time.Minute, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	conn, _ := w.p.ClickHouse()
	cards, err := scorecard.Build(ctx, conn, scorecard.Query{Granularity: "day"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := chstore.InsertScorecards(ctx, conn, "day", cards); err != nil {
		t.Fatal(err)
	}
	w.api = "http://" + w.p.APIAddr()
	return w
}

// truthCase is what the simulator's truth says of one responder on the
// case day, counted from its rows alone: the violation units (refused
// without an exception, or unanswered, when the purpose is treatment or
// individual access) and the classes.
type truthCase struct {
	responder  string
	violations int
	classes    map[string]int
}

func truthCases(rows []simulator.XCATruthRow) []truthCase {
	by := map[string]*truthCase{}
	for _, r := range rows {
		if r.RequestedAt.Before(caseDay) || !r.RequestedAt.Before(caseDay.Add(24*time.Hour)) {
			continue
		}
		// A cross-community chain's responder_org is the responding
		// gateway's home community.
		c := by[r.ResponderCommunity]
		if c == nil {
			c = &truthCase{responder: r.ResponderCommunity, classes: map[string]int{}}
			by[r.ResponderCommunity] = c
		}
		c.classes[r.Outcome]++
		if (r.Outcome == "refused_unjustified" || r.Outcome == "unanswered") && (r.Purpose == "treatment" || r.Purpose == "individual_access") {
			c.violations++
		}
	}
	var out []truthCase
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].violations != out[j].violations {
			return out[i].violations > out[j].violations
		}
		return out[i].responder < out[j].responder
	})
	return out
}

// TestCasePacketAgainstSimulator runs the simulator's cross-community
// traffic through the pipeline, builds the case packet of the responder
// with the most violation units with `hinscore case build`, and checks it
// against the truth: its violation units and classes equal the truth's,
// counted from the truth rows; it verifies, and fails naming the member
// after any byte of it is flipped. The api's endpoint gives the same.
func TestCasePacketAgainstSimulator(t *testing.T) {
	w := newCaseWorld(t)
	cases := truthCases(w.run.xca.Requests())
	if len(cases) < 2 || cases[0].violations < 3 {
		t.Fatalf("the plan has too few violations to say anything: %+v", cases)
	}
	want := cases[0]
	t.Logf("responder %s: %d violation units, classes %v", want.responder, want.violations, want.classes)
	packet := filepath.Join(w.dir, "case.tar")
	code, out, stderr := run(t, "case", "build", "--clickhouse", w.dsn, "--nats", w.p.NATSURL(), "--responder", want.responder,
		"--period", caseDay.Format("2006-01-02"), "--out", packet, "--who", "ivy", "--reason", "complaint 25-4 of a requester")
	if code != 0 {
		t.Fatalf("case build: exit %d: %s", code, stderr)
	}
	t.Logf("case build:\n%s", out)
	if !strings.Contains(out, "public key: "+w.public+"\n") {
		t.Errorf("build prints no public key %s:\n%s", w.public, out)
	}
	archive, err := os.ReadFile(packet)
	if err != nil {
		t.Fatal(err)
	}
	sum := checkCasePacket(t, archive, w.public, want)
	t.Run("verify", func(t *testing.T) { testCaseVerifyCLI(t, packet, w.public, sum) })
	t.Run("every member's bytes", func(t *testing.T) { testCaseFlips(t, archive) })
	t.Run("bad input", func(t *testing.T) { testCaseBadInput(t, w, packet) })
	t.Run("api", func(t *testing.T) { testCaseAPI(t, w, want) })
	t.Run("the trail holds every opening", func(t *testing.T) { testCaseTrailAcrossBuilders(t, w, want) })
}

// testCaseTrailAcrossBuilders builds the packet again from the command
// line, after the api's: its trail (read from AUDIT) holds the openings of
// both builds of the command line and the api's, each chain's three.
func testCaseTrailAcrossBuilders(t *testing.T, w *caseWorld, want truthCase) {
	packet := filepath.Join(t.TempDir(), "again.tar")
	code, _, stderr := run(t, "case", "build", "--clickhouse", w.dsn, "--nats", w.p.NATSURL(), "--responder", want.responder,
		"--period", caseDay.Format("2006-01-02"), "--out", packet, "--who", "ivy-cli", "--reason", "second look")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	archive, err := os.ReadFile(packet)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := casepacket.Verify(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	trail, _ := rep.File("audit.jsonl")
	opened := map[string]map[string]int{} // chain -> who@remote -> openings
	for _, line := range bytes.Split(bytes.TrimSpace(trail), []byte("\n")) {
		var e api.AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if e.Action == "case" && e.Outcome == api.AuditServed {
			if opened[e.Chain] == nil {
				opened[e.Chain] = map[string]int{}
			}
			by := e.Who
			if e.Remote != "cli" {
				by += "@api"
			}
			opened[e.Chain][by]++
		}
	}
	var sum api.CaseSummary
	if err := rep.ReadJSON("summary.json", &sum); err != nil {
		t.Fatal(err)
	}
	for _, id := range sum.Violations {
		if got := opened[id]; got["ivy"] != 1 || got["ivy@api"] != 1 || got["ivy-cli"] != 1 {
			t.Errorf("chain %s opened %v, want once by each build", id, got)
		}
	}
	if len(opened) != sum.Chains {
		t.Errorf("%d chains opened in the trail, %d in the packet", len(opened), sum.Chains)
	}
}

// checkCasePacket verifies a packet and checks it against the truth of
// its responder; it returns its summary.
func checkCasePacket(t *testing.T, archive []byte, public string, want truthCase) api.CaseSummary {
	t.Helper()
	key, err := casepacket.ParsePublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := casepacket.Verify(archive, key)
	if err != nil {
		t.Fatal(err)
	}
	var sum api.CaseSummary
	if err := rep.ReadJSON("summary.json", &sum); err != nil {
		t.Fatal(err)
	}
	chains := 0
	for _, n := range want.classes {
		chains += n
	}
	if sum.ViolationUnits != want.violations || len(sum.Violations) != want.violations || sum.Chains != chains || sum.Responder != want.responder {
		t.Errorf("packet: %d violation units %d chains of %s; truth: %d and %d", sum.ViolationUnits, sum.Chains, sum.Responder, want.violations, chains)
	}
	for class, n := range want.classes {
		if sum.Classes[class] != n {
			t.Errorf("class %s: %d in the packet, %d in the truth", class, sum.Classes[class], n)
		}
	}
	if sum.Originals["ok"] < sum.Chains || sum.Originals["mismatch"]+sum.Originals["key_unknown"] != 0 || !strings.Contains(sum.ViolationRule, "treatment") {
		t.Errorf("originals %v, rule %q", sum.Originals, sum.ViolationRule)
	}
	for _, id := range sum.Violations {
		var c api.CaseChainFile
		if err := rep.ReadJSON("chains/"+id+".json", &c); err != nil {
			t.Fatal(err)
		}
		if !c.ViolationUnit || !c.Chain.RequiredResponse || c.Classification.Why.RuleVersion == "" || c.Classification.Why.MappingVersion == "" {
			t.Errorf("violation %s: %+v", id, c.Classification)
		}
	}
	checkCaseTrail(t, rep, sum)
	var queries []api.RecordedQuery
	if err := rep.ReadJSON("queries.json", &queries); err != nil {
		t.Fatal(err)
	}
	if len(queries) < 1+sum.Chains || !strings.Contains(queries[0].SQL, "responder_org = ?") || len(queries[0].Rows) != sum.Chains {
		t.Errorf("%d queries; the first: %q with %d rows", len(queries), queries[0].SQL, len(queries[0].Rows))
	}
	return sum
}

// checkCaseTrail checks that the packet's audit trail records the opening
// of every chain it holds, by the packet's builder, for this packet.
func checkCaseTrail(t *testing.T, rep casepacket.Report, sum api.CaseSummary) {
	t.Helper()
	trail, ok := rep.File("audit.jsonl")
	if !ok {
		t.Fatal("no audit.jsonl")
	}
	opened := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(trail), []byte("\n")) {
		var e api.AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit.jsonl: %v", err)
		}
		if e.Action == "case" && e.Outcome == api.AuditServed && e.Responder == sum.Responder && e.Period == sum.Period && e.Who == sum.GeneratedBy {
			opened[e.Chain] = true
		}
	}
	if len(opened) != sum.Chains || sum.AuditEntries < sum.Chains {
		t.Errorf("the trail records %d openings for this packet (%d entries); it holds %d chains", len(opened), sum.AuditEntries, sum.Chains)
	}
}

func testCaseVerifyCLI(t *testing.T, packet, public string, sum api.CaseSummary) {
	code, out, stderr := run(t, "case", "verify", packet, "--public-key", public)
	if code != 0 || !strings.Contains(out, "verified") || !strings.Contains(out, " violation units") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
	if want := strconv.Itoa(sum.ViolationUnits) + " violation units"; !strings.Contains(out, want) {
		t.Errorf("verify says %q, want %q", out, want)
	}
	// A flipped byte in a member, in the manifest and in the signature:
	// exit 1 naming the file.
	archive, err := os.ReadFile(packet)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range packetRegions(archive) {
		if r.header || (r.name != "summary.json" && r.name != casepacket.ManifestName && r.name != casepacket.SignatureName) {
			continue
		}
		flipped := bytes.Clone(archive)
		flipped[r.start+r.size/2] ^= 0x01
		path := filepath.Join(t.TempDir(), "flipped.tar")
		if err := os.WriteFile(path, flipped, 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := run(t, "case", "verify", path, "--public-key", public)
		if code != 1 || !strings.Contains(stderr, r.name+" changed") {
			t.Errorf("%s flipped: exit %d: %s", r.name, code, stderr)
		}
	}
}

// region is a part of a packet: a member's header, or its content with
// its padding (size is the content's), or the end ("" and a header).
type region struct {
	name       string
	start, end int64
	size       int64
	header     bool
}

// packetRegions walks a packet's members as a tar reader does.
func packetRegions(archive []byte) []region {
	var regions []region
	rd := tar.NewReader(bytes.NewReader(archive))
	offset := int64(0)
	for {
		hdr, err := rd.Next()
		if err != nil {
			break
		}
		content := offset + 512
		offset = content + (hdr.Size+511)/512*512
		regions = append(regions, region{hdr.Name, content - 512, content, 512, true}, region{hdr.Name, content, offset, hdr.Size, false})
	}
	return append(regions, region{"", offset, int64(len(archive)), int64(len(archive)) - offset, true})
}

// testCaseFlips flips bytes of the real packet: every byte of the headers
// of summary.json, manifest.json and manifest.sig and of the archive's
// end; of every other member the first byte of its name, of its size,
// of its checksum and of its magic; and of every member the first, middle
// and last byte of its content and the last of its padding. (Verifying a
// packet of this size once per byte would take hours; the format's own
// test flips every byte of a small one.)
func testCaseFlips(t *testing.T, archive []byte) {
	regions := packetRegions(archive)
	whole := map[string]bool{"summary.json": true, casepacket.ManifestName: true, casepacket.SignatureName: true, "": true}
	flips := 0
	for _, r := range regions {
		var at []int64
		switch {
		case r.header && whole[r.name]:
			for i := r.start; i < r.end; i++ {
				at = append(at, i)
			}
		case r.header:
			at = []int64{r.start, r.start + 124, r.start + 148, r.start + 257}
		case r.size > 0:
			at = []int64{r.start, r.start + r.size/2, r.start + r.size - 1, r.end - 1}
		}
		for _, i := range at {
			archive[i] ^= 0x01
			_, err := casepacket.Verify(archive, nil)
			archive[i] ^= 0x01
			flips++
			var ce *casepacket.ChangedError
			switch {
			case errors.As(err, &ce) && ce.File == r.name:
			case errors.Is(err, casepacket.ErrUnreadable) && r.header:
			default:
				t.Fatalf("byte %d (%q, header %v): %v", i, r.name, r.header, err)
			}
		}
	}
	t.Logf("%d members, %d bytes: %d flips, each caught", len(regions)/2, len(archive), flips)
}

func testCaseBadInput(t *testing.T, w *caseWorld, packet string) {
	day := caseDay.Format("2006-01-02")
	build := func(responder, period string) []string {
		return []string{"case", "build", "--clickhouse", w.dsn, "--nats", w.p.NATSURL(), "--responder", responder, "--period", period, "--out", filepath.Join(t.TempDir(), "p.tar")}
	}
	pubFile := filepath.Join(t.TempDir(), "case.pub")
	if err := os.WriteFile(pubFile, []byte(w.public+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := casepacket.NewPrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))).Public()
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		code  int
		error string
	}{
		{"unknown responder", nil, build("no-such-responder", day), 1, "no chains of this responder"},
		{"injection in ORG", nil, build("x' OR 1=1 --", day), 2, "responder"},
		{"injection in ORG (semicolon)", nil, build("a;DROP TABLE exchange_outcomes", day), 2, "responder"},
		{"empty period", nil, build("org", ""), 2, "--period"},
		{"bad period", nil, build("org", "2026-13"), 2, "2026-W43"},
		{"no key", map[string]string{casepacket.EnvSigningKeyFile: ""}, build("org", day), 2, casepacket.EnvSigningKeyFile},
		{"unreadable key", map[string]string{casepacket.EnvSigningKeyFile: w.dir}, build("org", day), 2, casepacket.EnvSigningKeyFile},
		{"not a key", map[string]string{casepacket.EnvSigningKeyFile: packet}, build("org", day), 2, "case signing key"},
		{"wrong public key", nil, []string{"case", "verify", packet, "--public-key", other}, 1, "not signed with the given public key"},
		{"bad public key", nil, []string{"case", "verify", packet, "--public-key", "AAAA"}, 2, "--public-key"},
		{"public key from a file", nil, []string{"case", "verify", "--public-key", pubFile, packet}, 0, ""},
		{"no archive", nil, []string{"case", "verify"}, 2, "ARCHIVE"},
		{"missing archive", nil, []string{"case", "verify", filepath.Join(w.dir, "none.tar")}, 1, "no such file"},
		{"no subcommand", nil, []string{"case"}, 2, "build"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				if v == "" {
					t.Setenv(k, "")
					os.Unsetenv(k)
					continue
				}
				t.Setenv(k, v)
			}
			code, _, stderr := run(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.error) {
				t.Errorf("exit %d (want %d): %s (want %q)", code, c.code, stderr, c.error)
			}
		})
	}
}

// testCaseAPI gets the packet from the api: the same violation units, a
// packet that verifies with the key, investigator only, refusals audited.
func testCaseAPI(t *testing.T, w *caseWorld, want truthCase) {
	get := func(token string, q url.Values) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodGet, w.api+"/v1/case?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	q := url.Values{"responder": {want.responder}, "period": {caseDay.Format("2006-01-02")}, "reason": {"complaint 25-4, api"}}
	resp, body := get(caseInvestigatorToken, q)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Hinscore-Case-Public-Key") != w.public {
		t.Fatalf("investigator: %d %s", resp.StatusCode, body)
	}
	sum := checkCasePacket(t, body, w.public, want)
	if !strings.Contains(sum.AuditSource, "api-audit.jsonl") {
		t.Errorf("audit source %q", sum.AuditSource)
	}
	refused := []struct {
		token  string
		q      url.Values
		status int
	}{
		{caseAnalystToken, q, http.StatusForbidden},
		{caseInvestigatorToken, url.Values{"responder": {"x' OR 1=1 --"}, "period": q["period"], "reason": q["reason"]}, http.StatusBadRequest},
		{caseInvestigatorToken, url.Values{"responder": q["responder"], "period": {"2026-13"}, "reason": q["reason"]}, http.StatusBadRequest},
		{caseInvestigatorToken, url.Values{"responder": q["responder"], "period": {"2025-01-01"}, "reason": q["reason"]}, http.StatusNotFound},
		{caseInvestigatorToken, url.Values{"responder": {"no-such-responder"}, "period": q["period"], "reason": q["reason"]}, http.StatusNotFound},
		{caseInvestigatorToken, url.Values{"responder": q["responder"], "period": q["period"]}, http.StatusBadRequest},
	}
	for _, r := range refused {
		if resp, body := get(r.token, r.q); resp.StatusCode != r.status {
			t.Errorf("%v: %d %s, want %d", r.q, resp.StatusCode, body, r.status)
		}
	}
	log, err := os.ReadFile(filepath.Join(w.dir, "api-audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, line := range bytes.Split(bytes.TrimSpace(log), []byte("\n")) {
		var e api.AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if e.Action == "case" && e.Outcome == api.AuditDenied {
			denied++
		}
	}
	if denied != len(refused) {
		t.Errorf("%d denied case attempts in the audit log, want %d", denied, len(refused))
	}
}
