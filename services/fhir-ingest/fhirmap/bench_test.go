package fhirmap

import "testing"

// BenchmarkMapTask: decoding and mapping one Task version, the per-resource
// CPU cost under the ingest's figures.
func BenchmarkMapTask(b *testing.B) {
	m := testMapper()
	body := readExample(b, "task-completed.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Map(Input{Network: "neta", Body: body, Ingest: testIngest}); err != nil {
			b.Fatal(err)
		}
	}
}
