package atna

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"testing"
)

// audit4K is the ITI-55 Responding Gateway message grown to about 4 KB
// with more ParticipantObjectDetails, the size the 20,000
// messages/s per core is stated for.
func audit4K(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/iti55_responding.xml")
	if err != nil {
		b.Fatal(err)
	}
	end := bytes.LastIndex(data, []byte("  </ParticipantObjectIdentification>"))
	var extra bytes.Buffer
	for i := 0; len(data)+extra.Len() < 4000; i++ {
		fmt.Fprintf(&extra, "    <ParticipantObjectDetail type=\"urn:ihe:iti:xca:2010:homeCommunityId-%d\" value=\"dXJuOm9pZDoxLjIuMy40\"/>\n", i)
	}
	out := append([]byte{}, data[:end]...)
	out = append(out, extra.Bytes()...)
	return append(out, data[end:]...)
}

func BenchmarkParse(b *testing.B) {
	data := audit4K(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, limit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRawTokens is encoding/xml's tokenizer alone over the same
// bytes, nothing kept: what Parse would cost at least on it, the reason
// for the package's own scanner.
func BenchmarkRawTokens(b *testing.B) {
	data := audit4K(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d := xml.NewDecoder(bytes.NewReader(data))
		for {
			if _, err := d.RawToken(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
