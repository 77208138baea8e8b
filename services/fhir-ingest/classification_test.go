package fhiringest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// TestClassificationPerNetwork: neta brings its own classification rows
// (testdata/classification/neta-class.csv: issue throttled → transient
// error); the same throttled OperationOutcome and the same Task failed as
// throttled are a transient error on neta and a refusal on netb, over HTTP
// and through ImportNDJSON, and each event names the table that classified
// it. neta's other answers still fall through to the built-in rows.
func TestClassificationPerNetwork(t *testing.T) {
	tables, err := ReadClassification("neta=testdata/classification/neta-class.csv")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Classification = tables })
	const (
		netaVersion    = "fhir-map/5+neta-class/1+fhir-class/2"
		defaultVersion = "fhir-map/5+fhir-class/2"
	)
	for _, network := range []string{"neta", "netb"} {
		token := map[string]string{"neta": tokenA, "netb": tokenB}[network]
		for _, file := range []string{"operationoutcome.json", "task-failed-throttled.json", "message-response-refused.json"} {
			a := h.do(post{path: "/fhir/" + network + "/", token: token, corr: "corr-9", body: example(t, file)})
			if a.status != http.StatusCreated {
				t.Fatalf("%s %s: %d %s", network, file, a.status, a.body)
			}
		}
	}
	// ImportNDJSON reads the same configuration: a later version of the
	// throttled Task, imported for each network.
	var line bytes.Buffer
	if err := json.Compact(&line, bytes.Replace(example(t, "task-failed-throttled.json"), []byte(`"versionId": "3"`), []byte(`"versionId": "4"`), 1)); err != nil {
		t.Fatal(err)
	}
	line.WriteByte('\n')
	for _, network := range []string{"neta", "netb"} {
		st, err := ImportNDJSON(context.Background(), h.js, h.srv.cfg, network, bytes.NewReader(line.Bytes()))
		if err != nil || st.Resources != 1 || st.Events != 1 || st.Duplicates != 0 {
			t.Fatalf("import for %s: %+v %v", network, st, err)
		}
	}

	type got struct {
		status  hinscorev1.Status
		version string
	}
	byMsg := map[string]got{}
	for _, ev := range h.events() {
		byMsg[ev.Network+" "+ev.MessageId] = got{ev.Status, ev.MappingVersion}
	}
	TR, RF := hinscorev1.Status_STATUS_ERROR_TRANSIENT, hinscorev1.Status_STATUS_REFUSED
	want := map[string]got{
		"neta corr-9":                               {TR, netaVersion},
		"neta Task/cdex-task-1/_history/3":          {TR, netaVersion},
		"neta Task/cdex-task-1/_history/4":          {TR, netaVersion},
		"neta a8c3f1e0-0000-4000-8000-000000000002": {RF, netaVersion}, // suppressed: no own row, the built-in one
		"netb corr-9":                               {RF, defaultVersion},
		"netb Task/cdex-task-1/_history/3":          {RF, defaultVersion},
		"netb Task/cdex-task-1/_history/4":          {RF, defaultVersion},
		"netb a8c3f1e0-0000-4000-8000-000000000002": {RF, defaultVersion},
	}
	if len(byMsg) != len(want) {
		t.Errorf("%d events, want %d: %v", len(byMsg), len(want), byMsg)
	}
	for k, w := range want {
		if g, ok := byMsg[k]; !ok || g != w {
			t.Errorf("%s: %v %q, want %v %q", k, g.status, g.version, w.status, w.version)
		}
	}

	// Each network's CapabilityStatement names its table.
	for network, version := range map[string]string{"neta": "neta-class/1+fhir-class/2", "netb": "fhir-class/2"} {
		resp, err := h.client.Get(h.base + "/fhir/" + network + "/metadata")
		if err != nil {
			t.Fatal(err)
		}
		var cs capabilityStatement
		err = json.NewDecoder(resp.Body).Decode(&cs)
		resp.Body.Close()
		if err != nil || cs.Software.Version != version {
			t.Errorf("%s metadata: software version %q (%v), want %q", network, cs.Software.Version, err, version)
		}
	}
}
