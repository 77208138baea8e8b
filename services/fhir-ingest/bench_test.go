package fhiringest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// BenchmarkPostSingle32: single-resource POSTs over HTTP/1.1 keep-alive
// from 32 clients, against the raw async publish rate of the same server.
// Goal (issue 7): at least half that rate.
func BenchmarkPostSingle32(b *testing.B) {
	h := newHarnessStore(b, nil, false)
	limit := publishLimit(b, h.natsURL, 50000)
	const clients = 32
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = taskBody(i, "requested")
	}
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, h.base+"/fhir/neta/Task", bytes.NewReader(bodies[i]))
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
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "req/s")
	b.ReportMetric(limit, "limit_publish_msgs/s")
	b.ReportMetric(rate/limit, "ratio")
	b.Logf("%d POSTs: %.0f req/s; raw async publish %.0f msgs/s; goal >= %.0f req/s (half): ratio %.2f", b.N, rate, limit, limit/2, rate/limit)
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
	b.StopTimer()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), fmt.Sprintf("%d resource(s) stored", b.N)) {
		b.Fatalf("%d %s", resp.StatusCode, out)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "resources/s")
	b.ReportMetric(50000, "goal_resources/s")
	b.Logf("%d resources in %s: %.0f resources/s (goal 50000)", b.N, elapsed.Round(time.Millisecond), rate)
}
