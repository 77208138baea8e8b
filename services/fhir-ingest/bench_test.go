package fhiringest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/bustest"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

// taskBody is a ~900-byte Task version, unique per i so nothing is deduplicated.
func taskBody(i int, status string) []byte {
	return []byte(fmt.Sprintf(`{"resourceType":"Task","id":"bench-%d","meta":{"versionId":"1","lastUpdated":"2026-03-02T09:00:05Z"},`+
		`"identifier":[{"system":"http://example.org/payer-tasks","value":"req-%d"}],"status":"%s","intent":"order",`+
		`"code":{"coding":[{"system":"http://hl7.org/fhir/us/davinci-hrex/CodeSystem/hrex-temp","code":"data-request"}]},`+
		`"for":{"reference":"Patient/p%d","identifier":{"system":"http://example.org/mrn","value":"MRN-%d"}},`+
		`"authoredOn":"2026-03-02T09:00:00Z","lastModified":"2026-03-02T09:00:00Z",`+
		`"requester":{"reference":"Organization/payer","identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"9941339100"}},`+
		`"owner":{"reference":"Organization/provider","identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}},`+
		`"input":[{"type":{"coding":[{"code":"data-query"}]},"valueString":"DocumentReference?patient=p%d&type=34117-2"}]}`, i, i, status, i, i, i))
}

// publishLimit measures raw JetStream async publishing (300-byte messages
// with a Msg-Id) on the harness's server: the limit the ingest is held to.
func publishLimit(b *testing.B, url string, n int) float64 {
	b.Helper()
	return bustest.RawPublishRate(b, url, n, 300)
}

// ceilingReply is what the ceilings' handlers answer: the ingest's own
// reply to a stored resource.
var ceilingReply = storedReply(false, 1)

// ceiling is the rate at which handler, on the ingest's http.Server
// settings, answers the same POSTs from the same 32 keep-alive clients in
// this process: with a no-op handler, the HTTP/1.1 round trip alone; with
// one that stores each body in an event-sized message and awaits the
// PubAck before it answers, the most any handler of this design (store,
// then answer) could reach here, whatever its mapping cost.
func ceiling(b *testing.B, bodies [][]byte, n int, handler http.HandlerFunc) postRun {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := newHTTPServer(handler, nil, zerolog.Nop())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	run := leanPost32(bodies, n, ln.Addr().String(), "/fhir/neta/Task")
	if run.failed > 0 {
		b.Fatalf("ceiling: %d requests failed", run.failed)
	}
	return run
}

func noopHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	writeFHIRBytes(w, http.StatusCreated, ceilingReply)
}

// storeHandler publishes each body, with 200 bytes for the event around
// it and a Msg-Id of its own, to a stream configured as EVENTS on the
// harness's server, and answers after the PubAck.
func storeHandler(b *testing.B, h *harness) http.HandlerFunc {
	b.Helper()
	ctx := context.Background()
	cfg := bus.StreamConfigs(bus.DefaultStreamOptions())
	var events jetstream.StreamConfig
	for _, c := range cfg {
		if c.Name == bus.StreamEvents {
			events = c
		}
	}
	events.Name, events.Subjects = "CEILING", []string{"ceiling.>"}
	if _, err := h.js.CreateStream(ctx, events); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.js.DeleteStream(context.Background(), "CEILING") })
	var seq atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msg := nats.NewMsg("ceiling.x")
		msg.Data = append(make([]byte, 0, len(body)+200), body...)
		msg.Data = msg.Data[:len(body)+200]
		fut, err := h.js.PublishMsgAsync(msg, jetstream.WithMsgID("c"+strconv.FormatInt(seq.Add(1), 10)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		select {
		case <-fut.Ok():
			writeFHIRBytes(w, http.StatusCreated, ceilingReply)
		case err := <-fut.Err():
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}
}

// postRun is what a run of POSTs measured: requests per second, the CPU
// time of the whole process per request (clients, server and NATS alike)
// and the requests that did not get 201.
type postRun struct {
	rate   float64
	cpuUS  float64
	failed int64
}

// run32 runs worker in 32 goroutines (the clients) and measures them;
// take hands out the request indexes below n, fail counts requests that
// did not get 201.
func run32(n int, worker func(take func() (int, bool), fail func(int64))) postRun {
	var next, failed atomic.Int64
	take := func() (int, bool) {
		i := int(next.Add(1)) - 1
		return i, i < n
	}
	cpu0 := service.ProcessCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() { worker(take, func(k int64) { failed.Add(k) }) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := service.ProcessCPU() - cpu0
	return postRun{rate: float64(n) / elapsed.Seconds(), cpuUS: float64(cpu.Microseconds()) / float64(n), failed: failed.Load()}
}

// leanPost32 sends n POSTs of bodies (cycled) from 32 keep-alive HTTP/1.1
// connections, each sending a request and reading its reply before the
// next (no pipelining), with prepared requests and a minimal reply parser:
// a load generator like wrk, so that the clients, which share the two
// cores with the server here, take as little of them as they can.
func leanPost32(bodies [][]byte, n int, addr, path string) postRun {
	reqs := make([][]byte, len(bodies))
	for i, body := range bodies {
		reqs[i] = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
			path, addr, mediaFHIRJSON, tokenA, len(body), body)
	}
	return run32(n, func(take func() (int, bool), fail func(int64)) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			fail(1)
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
		br := bufio.NewReaderSize(conn, 16<<10)
		for i, ok := take(); ok; i, ok = take() {
			if _, err := conn.Write(reqs[i%len(reqs)]); err != nil {
				fail(1)
				return
			}
			status, err := readReply(br)
			if err != nil {
				fail(1)
				return
			}
			if status != http.StatusCreated {
				fail(1)
			}
		}
	})
}

// readReply reads one HTTP/1.1 reply with a Content-Length body and
// returns its status.
func readReply(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("status line %q", line)
	}
	size := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			if size, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, fmt.Errorf("Content-Length %q", v)
			}
		}
	}
	if size < 0 {
		return 0, errors.New("reply without Content-Length")
	}
	_, err = br.Discard(size)
	return status, err
}

// netHTTPPost32 sends n POSTs of bodies (cycled) from 32 keep-alive
// clients of Go's net/http, which costs the shared cores more CPU than
// leanPost32 per request: the figure a Go client on this machine gets.
func netHTTPPost32(bodies [][]byte, n int, url string) postRun {
	tr := &http.Transport{MaxIdleConns: 32, MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	return run32(n, func(take func() (int, bool), fail func(int64)) {
		for i, ok := take(); ok; i, ok = take() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
			req.Header.Set("Content-Type", mediaFHIRJSON)
			req.Header.Set("Authorization", "Bearer "+tokenA)
			resp, err := client.Do(req)
			if err != nil {
				fail(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				fail(1)
			}
		}
	})
}

// loadAvg is the machine's load average, printed beside every figure: the
// two cores are shared, and another process shows up in the rates.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// BenchmarkPostSingle32: single-resource POSTs (Task versions, one event
// each, so one EVENTS publish each) over HTTP/1.1 keep-alive from 32
// clients that each wait for a reply before the next request, against the
// raw async publish rate of the same server. Goal (issue 7): at least half
// the publish rate. Beside it, the two ceilings of the same server
// settings and clients (see ceiling), and the same POSTs from Go's
// net/http client.
func BenchmarkPostSingle32(b *testing.B) {
	h := newHarnessStore(b, nil, false)
	limit := publishLimit(b, h.natsURL, 50000)
	n := max(b.N, 20000)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = taskBody(i, "requested")
	}
	noop := ceiling(b, bodies, n, noopHandler)
	store := ceiling(b, bodies, n, storeHandler(b, h))
	addr := strings.TrimPrefix(h.base, "http://")
	b.ResetTimer()
	run := leanPost32(bodies[:b.N], b.N, addr, "/fhir/neta/Task")
	b.StopTimer()
	if run.failed > 0 {
		b.Fatalf("%d requests failed", run.failed)
	}
	// The same bodies again are duplicates (200): the Go client's run posts
	// versions of their own.
	goBodies := make([][]byte, n)
	for i := range goBodies {
		goBodies[i] = taskBody(n+i, "requested")
	}
	goRun := netHTTPPost32(goBodies, n, h.base+"/fhir/neta/Task")
	if goRun.failed > 0 {
		b.Fatalf("net/http client: %d requests failed", goRun.failed)
	}
	rate := run.rate
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(limit, "limit_publish_msgs/s")
	b.ReportMetric(rate/limit, "ratio")
	b.ReportMetric(run.cpuUS, "cpu_us/req")
	b.ReportMetric(noop.rate, "limit_http_noop_req/s")
	b.ReportMetric(store.rate, "limit_store_then_reply_req/s")
	b.ReportMetric(store.rate/limit, "ceiling_ratio")
	b.ReportMetric(goRun.rate, "nethttp_client_req/s")
	b.Logf("%d POSTs: %.0f req/s, %.1f µs CPU each; raw async publish %.0f msgs/s (goal >= %.0f req/s, half): ratio %.3f. "+
		"Ceilings, same server settings and clients: no-op handler %.0f req/s (%.1f µs CPU each, ratio %.2f); store-then-reply handler (one awaited publish, no mapping) %.0f req/s (%.1f µs CPU each, ratio %.2f); "+
		"the ingest reaches %.2f of that ceiling. With Go's net/http client: %.0f req/s, %.1f µs CPU each (ratio %.3f); load %s",
		b.N, rate, run.cpuUS, limit, limit/2, rate/limit,
		noop.rate, noop.cpuUS, noop.rate/limit, store.rate, store.cpuUS, store.rate/limit,
		rate/store.rate, goRun.rate, goRun.cpuUS, goRun.rate/limit, loadAvg())
}

// BenchmarkNDJSONBulk: one application/fhir+ndjson POST of b.N Task
// versions. Goal (issue 7): at least 50,000 resources/s.
func BenchmarkNDJSONBulk(b *testing.B) {
	h := newHarnessStore(b, func(c *Config) { c.MaxBodyBytes = 64 << 10 }, false)
	var body bytes.Buffer
	for i := 0; i < b.N; i++ {
		body.Write(taskBody(i, "completed"))
		body.WriteByte('\n')
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	b.ResetTimer()
	cpu0 := service.ProcessCPU()
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, h.base+"/fhir/neta/", bytes.NewReader(body.Bytes()))
	req.Header.Set("Content-Type", mediaNDJSON)
	req.Header.Set("Authorization", "Bearer "+tokenA)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	cpuUS := float64((service.ProcessCPU() - cpu0).Microseconds()) / float64(b.N)
	b.StopTimer()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), fmt.Sprintf("%d resource(s) stored", b.N)) {
		b.Fatalf("%d %s", resp.StatusCode, out)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "resources/s")
	b.ReportMetric(50000, "goal_resources/s")
	b.ReportMetric(cpuUS, "cpu_us/resource")
	b.Logf("%d resources in %s: %.0f resources/s (goal 50000), %.1f µs CPU each; load %s", b.N, elapsed.Round(time.Millisecond), rate, cpuUS, loadAvg())
}
