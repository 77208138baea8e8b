package toevent

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkMap reads and maps typical copies (an ITI-38 request with its
// signed-assertion-sized header, an XCPD answer with a match): bytes in,
// event out, with messages per second and allocations reported.
func BenchmarkMap(b *testing.B) {
	for _, name := range []string{"iti38_request.xml", "iti55_response_ok.xml", "iti39_response.mime"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		m := NewMapper([]byte("bench key"), "k1")
		in := Input{Network: "neta", Body: data, Ingest: time.Unix(1, 0)}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, _, err := m.Map(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
