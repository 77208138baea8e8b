package toevent

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// typicalMessages are 1–4 KB messages of the kinds a network carries:
// a query with its answer, an ADT with history, an ORU with results.
func typicalMessages() [][]byte {
	pid := "PID|1||MRN42^^^HOSP_A^MR~555-44-3333^^^SSA^SS||DOE^JANE^Q^^^^L||19700101|F|||1 MAIN ST^^SPRINGFIELD^IL^62701^USA||(217)555-0100|||M|||555-44-3333\r"
	rsp := "MSH|^~\\&|HIE|NETB|EHR|HOSP_A|20260302150030-0500||RSP^K22^RSP_K21|R1|P|2.5.1\rMSA|AA|Q1\rQAK|TAG1|OK|IHE PDQ Query|3|3|0\r" +
		"QPD|IHE PDQ Query|TAG1|@PID.3.1^MRN42~@PID.3.4.1^HOSP_A\r" + strings.Repeat(pid+"PD1|||HOSP_A^^1234\rNK1|1|DOE^JOHN|SPO\r", 3)
	adt := "MSH|^~\\&|EHR|HOSP_A|HIE|NETB|20260302095900-0500||ADT^A08^ADT_A01|A1|P|2.5.1\rEVN|A08|20260302095900\r" + pid +
		"PV1|1|I|W1^101^A^HOSP_A||||1234^SMITH^JOHN|||MED\r" + strings.Repeat("AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives\rDG1|1||I10^Essential hypertension^I10C|||A\r", 10)
	oru := "MSH|^~\\&|LAB|LAB_B|EHR|HOSP_A|20260303101500-0500||ORU^R01^ORU_R01|U1|P|2.5.1\r" + pid +
		"ORC|RE|PL77^EHR|F1^LAB||CM\rOBR|1|PL77^EHR|F1^LAB|58410-2^CBC panel^LN|||20260303090000-0500\r"
	for i := range 30 {
		oru += fmt.Sprintf("OBX|%d|NM|6690-2^WBC^LN||5.%d|10\\S\\3/uL^^UCUM|4.0-10.5|N|||F|||20260303091500\r", i+1, i%10)
	}
	oru += "NTE|1||" + strings.Repeat("Specimen received \\T\\ processed.\\.br\\", 20) + "\r"
	return [][]byte{[]byte(rsp), []byte(adt), []byte(oru)}
}

// BenchmarkParseMap parses and maps typical messages; the goal (issue 6) is
// 100,000 messages/s on one core with a fixed small number of allocations.
func BenchmarkParseMap(b *testing.B) {
	msgs := typicalMessages()
	total := 0
	for _, m := range msgs {
		if _, _, err := mapper.MapBytes("neta", m, ingest); err != nil {
			b.Fatal(err)
		}
		total += len(m)
	}
	b.SetBytes(int64(total / len(msgs)))
	b.ReportAllocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		if _, _, err := mapper.MapBytes("neta", msgs[i%len(msgs)], ingest); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(100000, "limit-msgs/s")
}
