package toevent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hinscore/hinscore/services/lib/atna"
)

// BenchmarkParseMap is what an audit listener spends per record: parse
// the AuditMessage and map it, the table parsed once as a caller keeps
// it. Over each testdata record of a cross-community transaction of
// 2–6 KB; BenchmarkParse beside it is the parser's share.
func BenchmarkParseMap(b *testing.B) {
	for _, file := range []string{"iti55_initiating.xml", "iti38_initiating.xml", "iti55_responding.xml"} {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", file))
		if err != nil {
			b.Fatal(err)
		}
		in := testInput(raw)
		in.Table = DefaultTable()
		b.Run(file, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				a, err := atna.Parse(raw, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Map(a, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(file+"/parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := atna.Parse(raw, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
