package fhiringest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/service"
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
	ctx := context.Background()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LIMIT", Subjects: []string{"limit.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 300)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync("limit.x", payload, jetstream.WithMsgID(fmt.Sprint("m", i)), jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("limit publishes not acknowledged")
	}
	rate := float64(n) / time.Since(start).Seconds()
	_ = js.DeleteStream(ctx, "LIMIT")
	return rate
}

// httpCeiling is the rate at which a no-op handler on the ingest's
// http.Server settings answers the same POSTs from the same 32 keep-alive
// clients in this process: the HTTP/1.1 round trip alone, the most any
// handler could reach here whatever it did behind it.
func httpCeiling(b *testing.B, bodies [][]byte, n int) postRun {
	b.Helper()
	reply := []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational","diagnostics":"stored: 1 exchange event(s)"}]}`)
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(reply)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := newHTTPServer(noop, nil, zerolog.Nop())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	run := post32(bodies, n, "http://"+ln.Addr().String()+"/fhir/neta/Task")
	if run.failed > 0 {
		b.Fatalf("ceiling: %d requests failed", run.failed)
	}
	return run
}

// postRun is what post32 measured: requests per second, the CPU time of
// the whole process per request (clients, server and NATS alike) and the
// requests that did not get 201.
type postRun struct {
	rate   float64
	cpuUS  float64
	failed int64
}

// post32 sends n POSTs of bodies (cycled) from 32 keep-alive clients.
func post32(bodies [][]byte, n int, url string) postRun {
	const clients = 32
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var next atomic.Int64
	var failed atomic.Int64
	cpu0 := service.ProcessCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Content-Type", mediaFHIRJSON)
				req.Header.Set("Authorization", "Bearer "+tokenA)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := service.ProcessCPU() - cpu0
	return postRun{rate: float64(n) / elapsed.Seconds(), cpuUS: float64(cpu.Microseconds()) / float64(n), failed: failed.Load()}
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

// BenchmarkPostSingle32: single-resource POSTs over HTTP/1.1 keep-alive
// from 32 clients, against the raw async publish rate of the same server
// and the HTTP ceiling (a no-op handler, same clients, same bodies).
// Goal (issue 7): at least half the publish rate. Each POST costs two
// publishes in sequence (RAW, then EVENTS carrying the RAW sequence).
func BenchmarkPostSingle32(b *testing.B) {
	h := newHarnessStore(b, nil, false)
	limit := publishLimit(b, h.natsURL, 50000)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = taskBody(i, "requested")
	}
	ceiling := httpCeiling(b, bodies, max(b.N, 20000))
	b.ResetTimer()
	run := post32(bodies, b.N, h.base+"/fhir/neta/Task")
	b.StopTimer()
	if run.failed > 0 {
		b.Fatalf("%d requests failed", run.failed)
	}
	rate := run.rate
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(limit, "limit_publish_msgs/s")
	b.ReportMetric(ceiling.rate, "limit_http_noop_req/s")
	b.ReportMetric(rate/limit, "ratio")
	b.ReportMetric(run.cpuUS, "cpu_us/req")
	b.Logf("%d POSTs: %.0f req/s, %.0f µs CPU each; raw async publish %.0f msgs/s (goal >= %.0f req/s, half): ratio %.3f; no-op HTTP handler %.0f req/s, %.0f µs CPU each (%.2f of it; half the publish rate is %.2f of it); load %s",
		b.N, rate, run.cpuUS, limit, limit/2, rate/limit, ceiling.rate, ceiling.cpuUS, rate/ceiling.rate, limit/2/ceiling.rate, loadAvg())
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
