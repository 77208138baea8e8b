package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/ids"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/hl7v2/mllp"
	"github.com/hinscore/hinscore/services/lib/hl7v2/toevent"
	"github.com/hinscore/hinscore/services/lib/service"
)

// handWorld is a few hand-written HL7 v2 exchanges on two networks sent
// through the real pipeline, so that every chain, step, journey and
// offender row the API serves has an exact expected value: the test wrote
// every message and knows every time, id and class.
type handWorld struct {
	base   string
	t0     time.Time // the first request
	msgs   map[string]handMsg
	chains map[string]string // request control id -> chain id
}

// handMsg is one message as sent, with what its event must say.
type handMsg struct {
	network string
	at      time.Time
	raw     string
	step    Step // the step the API must list (RawSeq not known in advance)
}

// Two patients: P1 (one shared MPI, seen on both networks) and P2 (only on
// northstar, redirected from the portal to the fax).
var (
	handP1 = "MRN100^^^SHARED_MPI"
	handP2 = "MRN200^^^NS_MPI"
)

// handMessages are the exchanges, in event time order per network:
//
//	bayview   BVQ1 query: commit ack CA after 1.5 s (interim), RSP AA OK after 20 s -> fulfilled
//	bayview   BVO1 order: ORR accepted after 3 s (interim), ORU result after ~2 h    -> fulfilled
//	bayview   BVQ2 query: AR "Request denied by policy" after 5 s                    -> refused_unjustified
//	northstar NSQ1 query: RSP NF after 4 s                                           -> not_found
//	northstar NSQ2 query (P2): AR redirect-portal after 2 s                          -> redirected
//	northstar NSQ3 query (P2): AR redirect-fax after 2 s                             -> redirected
func handMessages(t0 time.Time) []handMsg {
	hl7 := func(at time.Time) string { return at.UTC().Format("20060102150405.000") + "+0000" }
	qpd := func(tag, p string) string {
		mrn, auth, _ := strings.Cut(p, "^^^")
		return "QPD|IHE PDQ Query|" + tag + "|@PID.3.1^" + mrn + "~@PID.3.4.1^" + auth
	}
	msh := func(from, to string, at time.Time, typ, id string) string {
		return "MSH|^~\\&|" + from + "|" + to + "|" + hl7(at) + "||" + typ + "|" + id + "|P|2.5.1"
	}
	seg := func(s ...string) string { return strings.Join(s, "\r") + "\r" }
	query := func(network, from, to, id, p string, at time.Time) handMsg {
		return handMsg{network: network, at: at, raw: seg(msh(from, to, at, "QBP^Q22^QBP_Q21", id), qpd(id+"T", p), "RCP|I|10^RD"),
			step: Step{MessageID: id, MessageType: "QBP^Q22^QBP_Q21", Role: "request"}}
	}
	answer := func(network, from, to, id, req, ack, qak, p string, at time.Time, err string) handMsg {
		segs := []string{msh(from, to, at, "RSP^K22^RSP_K21", id), "MSA|" + ack + "|" + req}
		if err != "" {
			segs = append(segs, err)
		}
		hits := "0"
		if qak == "OK" {
			hits = "1"
		}
		segs = append(segs, "QAK|"+req+"T|"+qak+"|Q22^Find Candidates^HL7|"+hits+"|"+hits+"|0", qpd(req+"T", p))
		if qak == "OK" {
			segs = append(segs, "PID|1||"+p+"^MR||SAMPLE^PATIENT")
		}
		return handMsg{network: network, at: at, raw: seg(segs...),
			step: Step{MessageID: id, MessageType: "RSP^K22^RSP_K21", Role: "response", InReplyTo: req, AckCode: ack}}
	}
	const (
		bvClinic = "EHR|CLINIC_BV"
		bvHosp   = "HIS|HOSP_BV"
		bvLab    = "LIS|LAB_BV"
		nsClinic = "EHR|CLINIC_NS"
		nsHosp   = "HIS|HOSP_NS"
	)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := []handMsg{
		query("bayview", bvClinic, bvHosp, "BVQ1", handP1, at(0)),
		{network: "bayview", at: at(1500 * time.Millisecond), raw: seg(msh(bvHosp, bvClinic, at(1500*time.Millisecond), "ACK^Q22^ACK", "BVQ1C"), "MSA|CA|BVQ1"),
			step: Step{MessageID: "BVQ1C", MessageType: "ACK^Q22^ACK", Role: "interim", Status: "accepted", InReplyTo: "BVQ1", AckCode: "CA"}},
		answer("bayview", bvHosp, bvClinic, "BVQ1R", "BVQ1", "AA", "OK", handP1, at(20*time.Second), ""),
		{network: "bayview", at: at(time.Minute), raw: seg(msh(bvClinic, bvLab, at(time.Minute), "ORM^O01", "BVO1"),
			"PID|1||"+handP1+"^MR", "ORC|NW|PL1^EHR", "OBR|1|PL1^EHR||CBC"),
			step: Step{MessageID: "BVO1", MessageType: "ORM^O01", Role: "request"}},
		{network: "bayview", at: at(time.Minute + 3*time.Second), raw: seg(msh(bvLab, bvClinic, at(time.Minute+3*time.Second), "ORR^O02", "BVO1A"),
			"MSA|AA|BVO1", "ORC|OK|PL1^EHR|F1"),
			step: Step{MessageID: "BVO1A", MessageType: "ORR^O02", Role: "interim", Status: "accepted", InReplyTo: "BVO1", AckCode: "AA"}},
		query("bayview", bvClinic, bvHosp, "BVQ2", handP1, at(10*time.Minute)),
		answer("bayview", bvHosp, bvClinic, "BVQ2R", "BVQ2", "AR", "AR", handP1, at(10*time.Minute+5*time.Second), "ERR||||E||||Request denied by policy"),
		{network: "bayview", at: at(2*time.Hour + 17*time.Second), raw: seg(msh(bvLab, bvClinic, at(2*time.Hour+17*time.Second), "ORU^R01", "BVU1"),
			"PID|1||"+handP1+"^MR", "OBR|1|PL1^EHR|F1|CBC", "OBX|1|NM|WBC||5.2"),
			step: Step{MessageID: "BVU1", MessageType: "ORU^R01", Role: "response", Status: "ok"}},
		query("northstar", nsClinic, nsHosp, "NSQ1", handP1, at(5*time.Minute)),
		answer("northstar", nsHosp, nsClinic, "NSQ1R", "NSQ1", "AA", "NF", handP1, at(5*time.Minute+4*time.Second), ""),
		query("northstar", nsClinic, nsHosp, "NSQ2", handP2, at(30*time.Minute)),
		answer("northstar", nsHosp, nsClinic, "NSQ2R", "NSQ2", "AR", "AR", handP2, at(30*time.Minute+2*time.Second),
			"ERR||||E|redirect-portal^Use the patient portal^urn:hinscore:ib-exception|||Use the patient portal"),
		query("northstar", nsClinic, nsHosp, "NSQ3", handP2, at(40*time.Minute)),
		answer("northstar", nsHosp, nsClinic, "NSQ3R", "NSQ3", "AR", "AR", handP2, at(40*time.Minute+2*time.Second),
			"ERR||||E|redirect-fax^Send the request by fax^urn:hinscore:ib-exception|||Send the request by fax"),
	}
	for i := range ms {
		m := &ms[i]
		m.step.EventID = ids.Event(m.network, []byte(m.raw)).String()
		m.step.EventTimeMs = m.at.UnixMilli()
		m.step.Format = "hl7v2"
		m.step.RawSubject = "" // an EVENTS subject, checked by withoutRawSeq
		m.step.ReasonCodes = []string{}
		switch m.step.MessageID {
		case "BVQ1R":
			m.step.Status = "ok"
		case "BVQ2R":
			m.step.Status = "refused"
		case "NSQ1R":
			m.step.Status = "not_found"
		case "NSQ2R":
			m.step.Status, m.step.ExceptionCode = "redirected", "redirect-portal"
			m.step.ReasonCodes = []string{"redirect-portal"}
		case "NSQ3R":
			m.step.Status, m.step.ExceptionCode = "redirected", "redirect-fax"
			m.step.ReasonCodes = []string{"redirect-fax"}
		}
	}
	return ms
}

// handClasses is the class of every request of handMessages.
var handClasses = map[string]string{
	"bayview/BVQ1": "fulfilled", "bayview/BVO1": "fulfilled", "bayview/BVQ2": "refused_unjustified",
	"northstar/NSQ1": "not_found", "northstar/NSQ2": "redirected", "northstar/NSQ3": "redirected",
}

func newHandWorld(t *testing.T) *handWorld {
	t.Helper()
	// Yesterday morning: past every deadline once the linker idles, and one
	// daily scorecard period.
	t0 := time.Now().UTC().Truncate(24 * time.Hour).Add(-24*time.Hour + 10*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// One EVENTS partition: with four, a partition these few keys leave
	// empty never counts as caught up and the linker's draining shutdown
	// waits forever (the consumer's delivered stream sequence passes the
	// other partitions' events; see the linker's consumerCaughtUp).
	p := startPipeline(t, ctx, []string{"bayview", "northstar"}, 1)
	w := &handWorld{t0: t0, msgs: map[string]handMsg{}, chains: map[string]string{}}
	byNet := map[string][]handMsg{}
	for _, m := range handMessages(t0) {
		byNet[m.network] = append(byNet[m.network], m)
		w.msgs[m.step.MessageID] = m
	}
	for network, ms := range byNet {
		sendMLLP(t, p.ingest.Addrs()[network], ms)
	}
	waitClasses(t, ctx, p, handClasses)
	waitCount(t, ctx, p.conn, "SELECT count() FROM events", uint64(len(w.msgs)))
	p.stop()
	storeScorecards(t, ctx, p.conn)

	cfg := testConfig(t)
	srv := startServer(t, ctx, cfg, p.conn, p.js, p.log, service.SystemClock{})
	w.base = "http://" + srv.Addr()
	for key := range handClasses {
		network, id, _ := strings.Cut(key, "/")
		var res SearchResult
		getJSONAt(t, w.base, "analyst", "/v1/chains", url.Values{"network": {network}, "control_id": {id}}, &res)
		if len(res.Chains) != 1 {
			t.Fatalf("%s: %d chains", key, len(res.Chains))
		}
		w.chains[id] = res.Chains[0].ID
	}
	return w
}

// sendMLLP sends messages in order over one connection, each after the
// ingest's AA for the one before.
func sendMLLP(t *testing.T, addr string, ms []handMsg) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := mllp.NewReader(conn, 1<<20)
	for _, m := range ms {
		if err := mllp.WriteFrame(conn, []byte(m.raw)); err != nil {
			t.Fatal(err)
		}
		ack, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("%s: ack: %v", m.step.MessageID, err)
		}
		if !bytes.Contains(ack, []byte("\rMSA|AA|"+m.step.MessageID)) {
			t.Fatalf("%s: ingest answered %q", m.step.MessageID, ack)
		}
	}
}

// waitClasses waits until the latest outcome of every request has its class.
func waitClasses(t *testing.T, ctx context.Context, p *pipeline, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for !maps.Equal(got, want) {
		select {
		case <-ctx.Done():
			t.Fatalf("outcomes %v, want %v", got, want)
		case <-time.After(250 * time.Millisecond):
		}
		rows, err := p.conn.Query(ctx, `SELECT network, request_id, argMax(outcome, version) FROM exchange_outcomes GROUP BY network, request_id`)
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]string{}
		for rows.Next() {
			var n, id, class string
			if err := rows.Scan(&n, &id, &class); err != nil {
				t.Fatal(err)
			}
			got[n+"/"+id] = class
		}
		rows.Close()
	}
}

// steps returns the expected steps of the messages named, in that order.
func (w *handWorld) steps(ids ...string) []Step {
	out := make([]Step, len(ids))
	for i, id := range ids {
		out[i] = w.msgs[id].step
	}
	return out
}

// withoutRawSeq checks every step's original bytes are placed in its own
// EVENTS message (HL7 v2) and clears that place, which the test cannot
// know in advance.
func withoutRawSeq(t *testing.T, steps []Step) []Step {
	t.Helper()
	out := slices.Clone(steps)
	for i := range out {
		if out[i].RawSeq == 0 || !bus.RawInEvents(out[i].RawSubject) {
			t.Errorf("step %s has no raw position: %s/%d", out[i].MessageID, out[i].RawSubject, out[i].RawSeq)
		}
		out[i].RawSeq, out[i].RawSubject = 0, ""
	}
	return out
}

// TestHandWorld runs hand-written exchanges through the real pipeline into
// ClickHouse and checks, value for value, the interim steps of a chain (API
// and timeline view) and every CLI command in both forms.
func TestHandWorld(t *testing.T) {
	w := newHandWorld(t)
	t.Run("interim steps", func(t *testing.T) { testInterimSteps(t, w) })
	t.Run("cli", func(t *testing.T) { testHandCLI(t, w) })
	t.Run("reason words", func(t *testing.T) { testReasonWords(t, w) })
}

// testReasonWords: the refusals' ERR-8 texts reach no view read from
// ClickHouse (chain JSON, timeline page, CLI table), which show the codes
// and the cited exception or redirect kind; an investigator reads the
// words in the original message, through the audited raw view.
func testReasonWords(t *testing.T, w *handWorld) {
	for request, c := range map[string]struct{ words, answer, code string }{
		"BVQ2": {"Request denied by policy", "BVQ2R", ""},
		"NSQ2": {"Use the patient portal", "NSQ2R", "redirect-portal"},
		"NSQ3": {"Send the request by fax", "NSQ3R", "redirect-fax"},
	} {
		id := w.chains[request]
		for _, who := range []string{"analyst", "investigator"} {
			for _, path := range []string{"/v1/chains/" + id, "/ui/chains/" + id} {
				resp, body := fetch(t, w.base, testTokens[who], path, nil)
				if resp.StatusCode != http.StatusOK || strings.Contains(string(body), c.words) {
					t.Errorf("%s as %s: %d, the sender's words %q in it: %v", path, who, resp.StatusCode, c.words, strings.Contains(string(body), c.words))
				}
			}
		}
		out, _, err := w.cliRun("analyst", "chain", id)
		if err != nil || strings.Contains(out, c.words) || (c.code != "" && !strings.Contains(out, c.code)) {
			t.Errorf("hinscore chain %s: %v, want %q and not %q:\n%s", request, err, c.code, c.words, out)
		}
		var v ChainView
		getJSONAt(t, w.base, "analyst", "/v1/chains/"+id, nil, &v)
		if ans := v.Answers; len(ans) != 1 || ans[0].MessageID != c.answer || ans[0].Status == "" || ans[0].ExceptionCode != c.code {
			t.Errorf("%s answer %+v, want %s with exception %q", request, ans, c.answer, c.code)
		}
		var raw RawView
		getJSONAt(t, w.base, "investigator", "/v1/chains/"+id+"/raw", url.Values{"reason": {"case 7: refusal wording"}}, &raw)
		found := false
		for _, m := range raw.Messages {
			found = found || (m.MessageID == c.answer && m.Status == "ok" && strings.Contains(m.Data, c.words))
		}
		if !found {
			t.Errorf("raw view of %s lacks %s's words %q: %+v", request, c.answer, c.words, raw.Messages)
		}
	}
}

func testInterimSteps(t *testing.T, w *handWorld) {
	t0 := w.t0.UnixMilli()
	u64 := func(v uint64) *uint64 { return &v }
	cases := []struct {
		request  string
		steps    []string // every message, in time order
		interim  []string
		answers  []string
		tta, ttf uint64
		sla      time.Duration
		reqAt    int64
		timeline []string // the view's lines: offset, role, type, id, status, ack
	}{
		{
			request: "BVQ1", steps: []string{"BVQ1", "BVQ1C", "BVQ1R"}, interim: []string{"BVQ1C"}, answers: []string{"BVQ1R"},
			tta: 1500, ttf: 20000, sla: time.Minute, reqAt: t0,
			timeline: []string{
				"+0s request QBP^Q22^QBP_Q21 BVQ1",
				"+1.5s interim ACK^Q22^ACK BVQ1C · accepted · ack CA",
				"+20s response RSP^K22^RSP_K21 BVQ1R · ok · ack AA",
			},
		},
		{
			request: "BVO1", steps: []string{"BVO1", "BVO1A", "BVU1"}, interim: []string{"BVO1A"}, answers: []string{"BVU1"},
			tta: 3000, ttf: uint64((time.Hour + 59*time.Minute + 17*time.Second).Milliseconds()), sla: 72 * time.Hour, reqAt: t0 + time.Minute.Milliseconds(),
			timeline: []string{
				"+0s request ORM^O01 BVO1",
				"+3s interim ORR^O02 BVO1A · accepted · ack AA",
				"+1h59m17s response ORU^R01 BVU1 · ok",
			},
		},
	}
	for _, c := range cases {
		id := w.chains[c.request]
		var v ChainView
		getJSONAt(t, w.base, "analyst", "/v1/chains/"+id, nil, &v)
		if got, want := withoutRawSeq(t, v.Steps), w.steps(c.steps...); !reflect.DeepEqual(got, want) {
			t.Errorf("%s steps:\n got %+v\nwant %+v", c.request, got, want)
		}
		if got, want := withoutRawSeq(t, v.Interim), w.steps(c.interim...); !reflect.DeepEqual(got, want) {
			t.Errorf("%s interim:\n got %+v\nwant %+v", c.request, got, want)
		}
		if got, want := withoutRawSeq(t, v.Answers), w.steps(c.answers...); !reflect.DeepEqual(got, want) {
			t.Errorf("%s answers:\n got %+v\nwant %+v", c.request, got, want)
		}
		if v.Request == nil || v.Request.MessageID != c.request || len(v.Other) != 0 {
			t.Errorf("%s: request %+v, other %+v", c.request, v.Request, v.Other)
		}
		interimAt := w.msgs[c.interim[0]].at.UnixMilli()
		if v.Class != "fulfilled" || !reflect.DeepEqual(v.TTAMs, u64(c.tta)) || !reflect.DeepEqual(v.TTFMs, u64(c.ttf)) ||
			v.RequestedAtMs != c.reqAt || v.AckAtMs != interimAt || v.SLAMs != uint64(c.sla.Milliseconds()) {
			t.Errorf("%s: class %s tta %v ttf %v requested %d ack %d sla %d; want fulfilled %d %d %d %d %d", c.request, v.Class,
				v.TTAMs, v.TTFMs, v.RequestedAtMs, v.AckAtMs, v.SLAMs, c.tta, c.ttf, c.reqAt, interimAt, c.sla.Milliseconds())
		}
		if v.Times.AcknowledgedAt != msTime(interimAt) {
			t.Errorf("%s: acknowledged_at %q, want the interim's time %q", c.request, v.Times.AcknowledgedAt, msTime(interimAt))
		}

		resp, body := fetch(t, w.base, testTokens["analyst"], "/ui/chains/"+id, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("timeline of %s: %d", c.request, resp.StatusCode)
		}
		if got := timelineLines(t, string(body)); !slices.Equal(got, c.timeline) {
			t.Errorf("timeline of %s:\n got %q\nwant %q", c.request, got, c.timeline)
		}
		if want := "acknowledged after " + (time.Duration(c.tta) * time.Millisecond).String(); !strings.Contains(string(body), want) {
			t.Errorf("timeline of %s lacks %q", c.request, want)
		}
	}
}

var (
	timelineDiv = regexp.MustCompile(`(?s)<div class="tl" id="timeline">(.*?</div>)\s*</div>`)
	tags        = regexp.MustCompile(`<[^>]*>`)
)

// timelineLines returns the text of each entry of a chain page's timeline,
// whitespace collapsed.
func timelineLines(t *testing.T, page string) []string {
	t.Helper()
	m := timelineDiv.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no timeline in the page:\n%s", page)
	}
	var out []string
	for _, entry := range strings.Split(m[1], "</div>") {
		text := strings.Join(strings.Fields(tags.ReplaceAllString(entry, " ")), " ")
		if text != "" {
			out = append(out, text)
		}
	}
	return out
}

// cliRun runs one CLI command against the world's server as who.
func (w *handWorld) cliRun(who string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	cmd := append([]string{"--api", w.base, "--token", testTokens[who]}, args[1:]...)
	err := RunClientCLI(context.Background(), args[0], cmd, &out, &errb)
	return out.String(), errb.String(), err
}

// tableRows splits a tabwriter table into cells (two or more spaces apart)
// from its header line (the one starting with header) on.
func tableRows(t *testing.T, out, header string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, header) {
			var rows [][]string
			for _, r := range lines[i:] {
				rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(r), -1))
			}
			return rows
		}
	}
	t.Fatalf("no %q header in:\n%s", header, out)
	return nil
}

func testHandCLI(t *testing.T, w *handWorld) {
	t.Run("chain", func(t *testing.T) { testHandCLIChain(t, w) })
	t.Run("journey", func(t *testing.T) { testHandCLIJourney(t, w) })
	t.Run("offenders", func(t *testing.T) { testHandCLIOffenders(t, w) })
	t.Run("errors", func(t *testing.T) { testHandCLIErrors(t, w) })
}

// journeyRequest is a journey's request as (id, network, responder, kind,
// class, exception, requested).
type journeyRequest struct {
	ID, Network, Responder, Kind, Class, Exception string
	At                                             int64
}

// episodeSteps are the steps of an episode of these requests.
func episodeSteps(rows []journeyRequest) []EpisodeStep {
	out := []EpisodeStep{}
	for _, r := range rows {
		out = append(out, EpisodeStep{Chain: r.ID, RequestedAtMs: r.At, RequestKind: r.Kind, Responder: r.Responder, Class: r.Class, ExceptionCode: r.Exception})
	}
	return out
}

func journeyRequests(j Journey) []journeyRequest {
	var out []journeyRequest
	for _, o := range j.Requests {
		out = append(out, journeyRequest{o.ID, o.Network, o.ResponderOrg, o.RequestKind, o.Class, o.ExceptionCode, o.RequestedAtMs})
	}
	return out
}

// testHandCLIChain checks the chain command, as JSON (the API's answer)
// and as a table.
func testHandCLIChain(t *testing.T, w *handWorld) {
	t0 := w.t0.UnixMilli()
	minute := time.Minute.Milliseconds()
	id := w.chains["BVQ1"]
	out, _, err := w.cliRun("analyst", "chain", "--json", id)
	if err != nil {
		t.Fatal(err)
	}
	var v ChainView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("chain --json: %v\n%s", err, out)
	}
	if got, want := withoutRawSeq(t, v.Steps), w.steps("BVQ1", "BVQ1C", "BVQ1R"); v.ID != id || v.Class != "fulfilled" || !reflect.DeepEqual(got, want) {
		t.Errorf("chain --json: %s %s steps %+v", v.ID, v.Class, got)
	}
	// --json is the API's answer, byte for byte.
	_, api := fetch(t, w.base, testTokens["analyst"], "/v1/chains/"+id, nil)
	if out != string(api) {
		t.Errorf("chain --json differs from the API's JSON:\n%s\n%s", out, api)
	}
	out, _, err = w.cliRun("analyst", "chain", id)
	if err != nil {
		t.Fatal(err)
	}
	head := []string{
		"chain " + id + " (version " + fmt.Sprint(v.Version) + ")",
		"network bayview",
		"request patient_query BVQ1: CLINIC_BV -> HOSP_BV",
		"outcome fulfilled",
		"purpose unknown",
		"why the deciding answer returned the record within the SLA [rule " + v.RuleVersion + ", mapping " + toevent.MappingVersion + "]",
		"requested " + msTime(t0),
		"sla 1m0s + grace 30s, deadline " + msTime(t0+minute),
		"time to fulfil 20s",
		"patient " + patientToken(handP1),
	}
	lines := strings.Split(out, "\n")
	for i, want := range head {
		if i >= len(lines) || strings.Join(strings.Fields(lines[i]), " ") != want {
			t.Errorf("chain table line %d: %q, want %q", i, lines[min(i, len(lines)-1)], want)
		}
	}
	want := [][]string{
		{"OFFSET", "ROLE", "SIDE", "TYPE", "MESSAGE ID", "STATUS", "ACK", "REASON"},
		{"+0s", "request", "-", "QBP^Q22^QBP_Q21", "BVQ1", "-", "-", "-"},
		{"+1.5s", "interim", "-", "ACK^Q22^ACK", "BVQ1C", "accepted", "CA", "-"},
		{"+20s", "response", "-", "RSP^K22^RSP_K21", "BVQ1R", "ok", "AA", "-"},
	}
	if got := tableRows(t, out, "OFFSET"); !reflect.DeepEqual(got, want) {
		t.Errorf("chain table:\n got %q\nwant %q", got, want)
	}
	out, _, err = w.cliRun("analyst", "chain", w.chains["NSQ2"])
	if err != nil {
		t.Fatal(err)
	}
	if got := tableRows(t, out, "OFFSET")[2]; !slices.Equal(got, []string{"+2s", "response", "-", "RSP^K22^RSP_K21", "NSQ2R", "redirected", "AR", "redirect-portal"}) {
		t.Errorf("redirect row %q", got)
	}
}

// testHandCLIJourney checks the journey command of both patients, as JSON
// (the API's answer) and as a table, as the analyst and as an operator.
func testHandCLIJourney(t *testing.T, w *handWorld) {
	t0 := w.t0.UnixMilli()
	minute := time.Minute.Milliseconds()
	p1 := []journeyRequest{
		{w.chains["BVQ1"], "bayview", "HOSP_BV", "patient_query", "fulfilled", "", t0},
		{w.chains["BVO1"], "bayview", "LAB_BV", "order", "fulfilled", "", t0 + minute},
		{w.chains["NSQ1"], "northstar", "HOSP_NS", "patient_query", "not_found", "", t0 + 5*minute},
		{w.chains["BVQ2"], "bayview", "HOSP_BV", "patient_query", "refused_unjustified", "", t0 + 10*minute},
	}
	p1Episodes := []Episode{{FromMs: t0 + 5*minute, ToMs: t0 + 10*minute, Requests: 2, Networks: []string{"bayview", "northstar"},
		Responders: []string{"HOSP_BV", "HOSP_NS"}, Classes: map[string]int{"not_found": 1, "refused_unjustified": 1}, Channels: []string{},
		Chains: []string{w.chains["NSQ1"], w.chains["BVQ2"]}, Steps: episodeSteps(p1[2:]), Why: "2 unfulfilled request(s): below 3 requests and 2 redirects"}}
	p2 := []journeyRequest{
		{w.chains["NSQ2"], "northstar", "HOSP_NS", "patient_query", "redirected", "redirect-portal", t0 + 30*minute},
		{w.chains["NSQ3"], "northstar", "HOSP_NS", "patient_query", "redirected", "redirect-fax", t0 + 40*minute},
	}
	p2Episodes := []Episode{{FromMs: t0 + 30*minute, ToMs: t0 + 40*minute, Requests: 2, Redirects: 2, Networks: []string{"northstar"},
		Responders: []string{"HOSP_NS"}, Classes: map[string]int{"redirected": 2}, Channels: []string{"redirect-portal", "redirect-fax"},
		Chains: []string{w.chains["NSQ2"], w.chains["NSQ3"]}, Steps: episodeSteps(p2), Runaround: true, Kind: KindRedirects, Why: "redirected 2 times from channel to channel"}}

	for _, c := range []struct {
		who, patient string
		rows         []journeyRequest
		episodes     []Episode
		scope        []string
		verdict      string
	}{
		{"analyst", handP1, p1, p1Episodes, []string{}, "no runaround detected"},
		{"analyst", handP2, p2, p2Episodes, []string{}, "RUNAROUND DETECTED"},
		// An operator sees its own network's requests only.
		{"operator-ns", handP1, p1[2:3], []Episode{{FromMs: t0 + 5*minute, ToMs: t0 + 5*minute, Requests: 1, Networks: []string{"northstar"},
			Responders: []string{"HOSP_NS"}, Classes: map[string]int{"not_found": 1}, Channels: []string{}, Chains: []string{w.chains["NSQ1"]},
			Steps: episodeSteps(p1[2:3]), Why: "1 unfulfilled request(s): below 3 requests and 2 redirects"}}, []string{"northstar"}, "no runaround detected"},
	} {
		token := patientToken(c.patient)
		out, _, err := w.cliRun(c.who, "journey", "--json", token)
		if err != nil {
			t.Fatal(err)
		}
		var j Journey
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatalf("journey --json: %v\n%s", err, out)
		}
		if got := journeyRequests(j); !reflect.DeepEqual(got, c.rows) {
			t.Errorf("journey --json of %s as %s:\n got %+v\nwant %+v", c.patient, c.who, got, c.rows)
		}
		if !reflect.DeepEqual(j.Episodes, c.episodes) || j.Token != token || !slices.Equal(j.Scope, c.scope) ||
			j.RuleVersion != RunaroundRuleVersion || j.Runaround != c.episodes[0].Runaround || j.Truncated {
			t.Errorf("journey --json of %s as %s: token %s scope %v rule %s runaround %v truncated %v episodes\n %+v\nwant %+v",
				c.patient, c.who, j.Token, j.Scope, j.RuleVersion, j.Runaround, j.Truncated, j.Episodes, c.episodes)
		}
		for _, o := range j.Requests {
			if o.PatientToken != token {
				t.Errorf("journey of %s lists chain %s of patient %s", c.patient, o.ID, o.PatientToken)
			}
		}
		_, api := fetch(t, w.base, testTokens[c.who], "/v1/patients/"+token+"/journey", nil)
		if out != string(api) {
			t.Errorf("journey --json differs from the API's JSON")
		}

		out, _, err = w.cliRun(c.who, "journey", token)
		if err != nil {
			t.Fatal(err)
		}
		if first := strings.SplitN(out, "\n", 2)[0]; first != fmt.Sprintf("patient %s: %d requests, %s (%s)", token, len(c.rows), c.verdict, RunaroundRuleVersion) {
			t.Errorf("journey table first line %q", first)
		}
		if c.episodes[0].Runaround && !strings.Contains(out, "  "+msTime(c.episodes[0].FromMs)+" .. "+msTime(c.episodes[0].ToMs)+": "+c.episodes[0].Kind+": "+c.episodes[0].Why+"\n") {
			t.Errorf("journey table lacks the runaround episode:\n%s", out)
		}
		want := [][]string{{"REQUESTED", "NETWORK", "RESPONDER", "KIND", "PURPOSE", "OUTCOME", "CHAIN"}}
		for _, r := range c.rows {
			cls := r.Class
			if r.Exception != "" {
				cls += " (" + r.Exception + ")"
			}
			want = append(want, []string{msTime(r.At), r.Network, r.Responder, r.Kind, "unknown", cls, r.ID})
		}
		if got := tableRows(t, out, "REQUESTED"); !reflect.DeepEqual(got, want) {
			t.Errorf("journey table of %s as %s:\n got %q\nwant %q", c.patient, c.who, got, want)
		}
	}
}

// handOffender is a network of the hand world as the offenders command
// shows it: its requests and suspect chains of the day.
type handOffender struct {
	name              string
	requests, suspect uint64
	chains            []ChainRef
}

// testHandCLIOffenders checks the offenders command by day, as the
// analyst and as an operator, and by week.
func testHandCLIOffenders(t *testing.T, w *handWorld) {
	t0 := w.t0.UnixMilli()
	minute := time.Minute.Milliseconds()
	ref := func(id string, class string, at int64, p string) ChainRef {
		return ChainRef{ID: w.chains[id], ResponderOrg: map[bool]string{true: "HOSP_BV", false: "HOSP_NS"}[strings.HasPrefix(id, "BV")],
			Outcome: class, RequestedAtMs: at, PatientToken: patientToken(p)}
	}
	nets := []handOffender{
		{"bayview", 3, 1, []ChainRef{ref("BVQ2", "refused_unjustified", t0+10*minute, handP1)}},
		{"northstar", 3, 2, []ChainRef{ref("NSQ3", "redirected", t0+40*minute, handP2), ref("NSQ2", "redirected", t0+30*minute, handP2)}},
	}
	for _, c := range []struct {
		who  string
		nets []handOffender
	}{{"analyst", nets}, {"operator-ns", nets[1:]}} {
		checkHandOffenders(t, w, c.who, c.nets)
	}
	// The default granularity is the week: the same networks, one week.
	out, _, err := w.cliRun("analyst", "offenders", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var o Offenders
	if err := json.Unmarshal([]byte(out), &o); err != nil || o.Query.Granularity != "week" || len(o.Periods) != 1 || len(o.Offenders) != 2 {
		t.Errorf("offenders --json (weekly): %v %+v", err, o)
	}
}

// checkHandOffenders checks the offenders command by day as who, who sees
// nets: as JSON (the API's answer) and as a table.
func checkHandOffenders(t *testing.T, w *handWorld, who string, nets []handOffender) {
	t.Helper()
	day := w.t0.Format("2006-01-02")
	out, _, err := w.cliRun(who, "offenders", "--json", "--granularity", "day")
	if err != nil {
		t.Fatal(err)
	}
	var o Offenders
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("offenders --json: %v\n%s", err, out)
	}
	q := DefaultOffenderQuery()
	q.Granularity = "day"
	if o.FormulaVersion != OffenderFormulaVersion || o.Query != q || !slices.Equal(o.Periods, []string{day}) || len(o.Offenders) != len(nets) {
		t.Fatalf("offenders --json as %s: %s %+v %v, %d offenders; want %v and %d", who, o.FormulaVersion, o.Query, o.Periods, len(o.Offenders), []string{day}, len(nets))
	}
	wantTable := [][]string{{"NETWORK", "PRIORITY", "FLAGGED", "REPEAT", "PERIOD", "REQUESTS", "SUSPECT", "LOWER BOUND", "CHAINS"}}
	for i, n := range nets {
		got := o.Offenders[i]
		rate := float64(n.suspect) / float64(n.requests)
		sc := got.LatestScorecard
		// Three requests are below min_requests: shown, never flagged or ranked.
		if got.Network != n.name || got.Flagged != 0 || got.Consecutive != 0 || got.RepeatOffender || got.ExcessSuspect != 0 || got.Priority != 0 {
			t.Errorf("offender %d as %s: %+v, want %s unflagged", i, who, got, n.name)
		}
		if !reflect.DeepEqual(got.Chains, n.chains) {
			t.Errorf("offender %s chains:\n got %+v\nwant %+v", n.name, got.Chains, n.chains)
		}
		if sc.Network != n.name || sc.Granularity != "day" || sc.Period != day || sc.Requests != n.requests || sc.Suspect != n.suspect ||
			sc.SuspectRate != rate || sc.SuspectCILow <= 0 || sc.SuspectCILow >= rate || len(sc.Scorecard) < 10 {
			t.Errorf("offender %s latest scorecard %+v", n.name, sc)
		}
		if len(got.Periods) != 1 || got.Periods[0].Period != day || got.Periods[0].Requests != n.requests || got.Periods[0].SuspectRate != rate || got.Periods[0].Flagged {
			t.Errorf("offender %s periods %+v", n.name, got.Periods)
		}
		ids := make([]string, len(n.chains))
		for j, ch := range n.chains {
			ids[j] = ch.ID
		}
		wantTable = append(wantTable, []string{n.name, "0.0", "0/1", "no", day, fmt.Sprint(n.requests),
			fmt.Sprintf("%.1f %%", 100*rate), fmt.Sprintf("%.1f %%", 100*sc.SuspectCILow), strings.Join(ids, " ")})
	}
	_, api := fetch(t, w.base, testTokens[who], "/v1/offenders", url.Values{"granularity": {"day"}})
	if out != string(api) {
		t.Errorf("offenders --json differs from the API's JSON")
	}
	out, _, err = w.cliRun(who, "offenders", "--granularity", "day")
	if err != nil {
		t.Fatal(err)
	}
	if first := strings.SplitN(out, "\n", 2)[0]; first != "offenders/1: 3 of the last 4 days ("+day+"), threshold 5.0 %, min 30 requests" {
		t.Errorf("offenders table first line %q", first)
	}
	if got := tableRows(t, out, "NETWORK"); !reflect.DeepEqual(got, wantTable) {
		t.Errorf("offenders table as %s:\n got %q\nwant %q", who, got, wantTable)
	}
}

func testHandCLIErrors(t *testing.T, w *handWorld) {
	ctx := context.Background()
	id := w.chains["BVQ1"]
	unknown := "00000000-0000-4000-8000-000000000000"
	for _, c := range []struct {
		name string
		who  string
		args []string
		want string
	}{
		{"unknown chain", "analyst", []string{"chain", unknown}, "GET /v1/chains/" + unknown + ": 404 Not Found: no such chain"},
		{"unknown chain --json", "analyst", []string{"chain", "--json", unknown}, "GET /v1/chains/" + unknown + ": 404 Not Found: no such chain"},
		{"another network's chain", "operator-ns", []string{"chain", id}, "GET /v1/chains/" + id + ": 403 Forbidden: this token is bound to another network"},
	} {
		out, _, err := w.cliRun(c.who, c.args...)
		if err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) || out != "" {
			t.Errorf("%s: %v (stdout %q), want an error with %q", c.name, err, out, c.want)
		}
	}
	// A wrong token: 401 and what to check, never a usage error.
	for _, args := range [][]string{{"chain", id}, {"journey", patientToken(handP1)}, {"offenders"}} {
		var out bytes.Buffer
		err := RunClientCLI(ctx, args[0], append([]string{"--api", w.base, "--token", wrongToken}, args[1:]...), &out, io.Discard)
		if err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "401 Unauthorized: unknown token (check $HINSCORE_API_TOKEN or --token-file)") || out.Len() != 0 {
			t.Errorf("%v with a wrong token: %v (stdout %q)", args, err, out.String())
		}
	}
	// Nothing listening: the error names the address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	if err := RunClientCLI(ctx, "offenders", []string{"--api", closed, "--token", "t"}, io.Discard, io.Discard); err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("API down: %v", err)
	}
	// Command-line mistakes: ErrUsage (exit 2) with the usage line, before any request.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"chain"}, "usage: hinscore chain [--api URL] [--token-file F] [--json] CHAIN_ID"},
		{[]string{"chain", id, id}, "usage: hinscore chain [--api URL] [--token-file F] [--json] CHAIN_ID"},
		{[]string{"chain", "not-a-uuid"}, "usage"},
		{[]string{"journey"}, "usage: hinscore journey [--api URL] [--token-file F] [--json] [--purpose P] PATIENT_TOKEN"},
		{[]string{"journey", "XYZ"}, "usage"},
		{[]string{"journey", "--purpose", "T-TRTMNT", patientToken(handP1)}, "purpose: want one of treatment, payment"},
		{[]string{"chain", "--purpose", "treatment", id}, "--purpose is for journey and offenders"},
		{[]string{"offenders", "extra"}, "usage: hinscore offenders [--api URL] [--token-file F] [--json] [--granularity week] [--purpose P]"},
		{[]string{"offenders", "--purpose", "TREAT"}, "--purpose: want required_response or one of treatment"},
		{[]string{"offenders", "--granularity", "year"}, "usage"},
		{[]string{"chain", "--bogus", id}, "flag provided but not defined: -bogus"},
		{[]string{"chain", "--api", "ftp://x", id}, `--api "ftp://x": want http(s)://host:port`},
	} {
		var out, errb bytes.Buffer
		err := RunClientCLI(ctx, c.args[0], append([]string{"--token", "t"}, c.args[1:]...), &out, &errb)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) || out.Len() != 0 {
			t.Errorf("%v: %v (stdout %q), want ErrUsage with %q", c.args, err, out.String(), c.want)
		}
	}
	t.Setenv(EnvClientToken, "")
	if err := RunClientCLI(ctx, "chain", []string{"--api", w.base, id}, io.Discard, io.Discard); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "no token") {
		t.Errorf("no token: %v", err)
	}
	// The token and address may come from the environment.
	t.Setenv(EnvClientToken, testTokens["analyst"])
	t.Setenv(EnvClientURL, w.base)
	var out bytes.Buffer
	var v ChainView
	if err := RunClientCLI(ctx, "chain", []string{"--json", id}, &out, io.Discard); err != nil || json.Unmarshal(out.Bytes(), &v) != nil || v.ID != id {
		t.Errorf("chain with the token from %s and the API from %s: %v %q", EnvClientToken, EnvClientURL, err, out.String())
	}
	if err := RunClientCLI(ctx, "frobnicate", nil, io.Discard, io.Discard); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown command: %v", err)
	}
}
