package hl7v2

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// publicSamples are real-world messages from public test suites and
// parsers' fixtures (testdata/public/README.md names each one's source and
// licence), with values read by hand from the messages.
var publicSamples = []struct {
	file    string
	want    map[string]string
	check   func(t *testing.T, m *Message)
	charset Charset
}{
	{file: "python-hl7_oru_r01.hl7", want: map[string]string{
		"MSH-3": "GHH LAB", "MSH-9": "ORU^R01", "MSH-9.2": "R01", "MSH-10": "CNTRL-3456", "MSH-12": "2.4",
		"PID-3": "555-44-4444", "PID-5.1": "EVERYWOMAN", "PID-5.7": "L", "PID-6": "JONES", "PID-11.3": "STATESVILLE",
		"PID-13": "(206)3345232", "PID-18": "AC555444444", "PID-20.2": "OH",
		"OBR-2.2": "GHH OE", "OBR-4.2": "GLUCOSE", "OBR-7": "200202150730", "OBR-15.9": "LEVEL SEVEN HEALTHCARE, INC.",
		"OBR-24": "F", "OBR-30.2": "HIPPOCRATES",
		"OBX-5.1": "", "OBX-5.2": "182", "OBX-6": "mg/dl", "OBX-7": "70_105", "OBX-8": "H", "OBX-11": "F",
		"OBX(2)-2": "FN", "OBX(2)-3.1": "1553-5",
	}, check: func(t *testing.T, m *Message) {
		if m.SegmentCount() != 5 || m.Count("OBX") != 2 {
			t.Errorf("%d segments, %d OBX; want 5, 2", m.SegmentCount(), m.Count("OBX"))
		}
	}},
	{file: "hl7apy_qbp_q22.hl7", want: map[string]string{
		"MSH-9": "QBP^Q22^QBP_Q21", "MSH-10": "111069", "MSH-11": "D", "MSH-17": "ITA", "MSH-19": "EN",
		"QPD-1": "IHE PDQ Query", "QPD-2": "111069", "QPD-3.1": "@PID.5.2", "QPD-3.2": "SMITH", "RCP-1": "I",
	}},
	{file: "hl7apy_rsp_k22.hl7", want: map[string]string{
		"MSH-9": "RSP^K22^RSP_K21", "MSH-12": "2.5", "MSA-1": "AA", "MSA-2": "26775702551812240",
		"QAK-1": "111069", "QAK-2": "OK", "QAK-4": "1", "QAK-5": "1", "QAK-6": "0",
		"QPD-3(1).2": "1010110909194822", "QPD-3(2).1": "@PID.5.1", "QPD-3(2).2": "SMITH",
		"PID-3.1": "10101", "PID-3.4.1": "GATEWAY", "PID-3.4.2": "1.3.6.1.4.1.21367.2011.2.5.17", "PID-3.4.3": "ISO",
		"PID-5.2": "SMITH", "PID-5.7": "A", "PID-7": "19690113", "PID-11.1": "VIA DELLE VIE", "PID-11.3": "CAGLIARI",
		"PID-11.6": "100", "PID-11.9": "092009", "PID-23": "CAGLIARI",
	}},
	{file: "hl7apy_rsp_k22_v27_truncation.hl7", want: map[string]string{
		"MSH-2": "^~\\&#", "MSH-12": "2.7", "QAK-2": "OK", "QPD-3(2).2": "SMITH",
		"PID-3.4.2": "1.3.6.1.4.1.21367.2011.2.5.17", "PID-23": "CAGLIARI",
	}, check: func(t *testing.T, m *Message) {
		if d := m.Delimiters(); d.Truncation != '#' || d.SubComponent != '&' {
			t.Errorf("delimiters %+v, want truncation '#'", d)
		}
	}},
	{file: "hapi_olis_erp_z99_lf.hl7", charset: CharsetLatin1, want: map[string]string{
		"MSH-3": "^OLIS^X500", "MSH-3.2": "OLIS", "MSH-4": "", "MSH-5.2": "2.16.840.1.113883.3.59.3:0947",
		"MSH-7": "20130926150434-0400", "MSH-9": "ERP^Z99^ERP_R09", "MSH-11": "T", "MSH-12": "2.3.1", "MSH-18": "8859/1",
		"MSA-2": "212137", "QAK-2": "OK", "ERQ-2": "R09", "ERQ-3(2)": "@PID.3.4.2", "ERQ-3(4).2": "JHN",
		"ERQ-3(13).2": "UNIVERSITY HEALTH NETWORK", "PID-3.5": "JHN", "PID-3.9.2": "ONTARIO", "PID-5.1": "WXSSXY",
		"PID-11(2).1": "10 Mailing Address Ave", "PID-11(2).7": "M", "PID-13(3).4": "email@address.com",
		"PID-14(2).3": "FX", "NTE-4.2": "REMARK", "ZNT-1.2": "2.16.840.1.113883.3.59.1:4006",
	}, check: func(t *testing.T, m *Message) {
		if n := m.Repetitions("ERQ-3"); n != 17 {
			t.Errorf("ERQ-3 has %d repetitions, want 17", n)
		}
	}},
	{file: "ipf_rsp_k23_crlf.hl7", want: map[string]string{
		"MSH-7": "20170224141101.31+0900", "MSH-9.3": "RSP_K23", "MSH-11.1": "P", "MSH-11.2": "T",
		"MSA-2": "27783eae-7446-404a-a91d-152ccb6cf1a0", "QAK-2": "OK", "QPD-1": "IHE PIX Query",
		"QPD-3.4.1": "", "QPD-3.4.2": "1.3.6.1.4.1.21367.2011.2.5.5435", "PID-3.4.1": "TPLUS",
		"PID-5(1)": "", "PID-5(2).7": "S",
	}, check: func(t *testing.T, m *Message) {
		if n := m.Repetitions("PID-5"); n != 2 {
			t.Errorf("PID-5 has %d repetitions, want 2", n)
		}
	}},
	{file: "ipf_adt_a40_iso-8859-1_crlf.hl7", want: map[string]string{
		"MSH-5": "BLÄH", "MSH-6": "BLÖÖÖH-1", "MSH-9": "ADT^A40", "MSH-12": "2.3.1",
		"PID-3(2).1": "7200117317", "PID-3(3).4.2": "2.16.840.1.113883.3.37.4.1.1.2.711.1", "PID-5.7": "L",
		"PID-11.3": "NEW YORK CITY", "PID-16": "U", "MRG-1(1)": "305010", "MRG-1(2).4.1": "BBB", "PV1-2": "O",
	}},
	{file: "nist_iz_ack_v04_err.hl7", want: map[string]string{
		"MSH-3": "NISTIISAPP", "MSH-7": "20150625121047.853-0500", "MSH-9": "ACK^V04^ACK", "MSH-21": "Z23^CDCPHINVS",
		"MSH-22.6": "NIST-AA-IZ-1", "MSH-22.10": "100-3322", "MSH-23.1": "NISTEHRFAC",
		"MSA-1": "AE", "MSA-2": "NIST-IZ-AD-7.1_Send_V04_Z22", "ERR-2": "RXA^1^5^1^1", "ERR-2.3": "5",
		"ERR-3.1": "999", "ERR-3.2": "Application error", "ERR-4": "E", "ERR-5.2": "Table value not found",
		"ERR-8": "Vaccine code not recognized - message rejected",
	}, check: func(t *testing.T, m *Message) {
		if p := m.AckPolicy(); !p.Enhanced || p.Accept != "NE" {
			t.Errorf("ack policy %+v, want enhanced, NE", p)
		}
	}},
	{file: "nist_iz_vxu_v04.hl7", want: map[string]string{
		"MSH-9": "VXU^V04^VXU_V04", "MSH-15": "AL", "MSH-16": "ER", "PID-3.4": "NIST MPI", "PID-5.2": "",
		"PID-5.3": "Ainsley", "PID-6.1": "Lam", "PID-10.2": "Native Hawaiian or Other Pacific Islander",
		"PID-13.6": "657", "PID-22.3": "CDCREC", "NK1-3.1": "MTH", "ORC-10.2": "Burden", "ORC-12.10": "L",
		"RXA-5.2": "Influenza, seasonal, injectable, preservative free", "RXA-6": "0.5",
		"RXA-7.2": "MilliLiter [SI Volume Units]", "RXA-11.4": "X68", "RXA-15": "Z0860BB", "RXA-17.2": "CSL Behring",
		"RXA-20": "CP", "RXR-2.2": "Left Arm", "OBX(4)-5": "20120814", "OBX(1)-17.1": "VXC40",
		"OBX(1)-5.2": "VFC eligible - Federally Qualified Health Center Patient (under-insured)",
	}},
	{file: "wikipedia_adt_a01_lf.hl7", want: map[string]string{
		"MSH-7": "20060529090131-0500", "MSH-9.3": "ADT_A01", "MSH-10": "01052901", "EVN-2": "200605290901",
		"EVN-6": "200605290900", "PID-3.5": "PI", "PID-5.4": "JR", "PID-10.4": "RA99113",
		"PID-11(2).1": "NICKELL\u2019S PICKLES", "PID-11(2).7": "O", "PID-18.4": "99DEF", "PV1-3.4": "UABH",
		"PV1-7.2": "MORGAN", "PV1-9.2": "GRAINGER", "PV1-17.2": "POTTER", "PV1-44": "200605290900",
		"OBX-2.2": "K&M", "OBX-2.2.2": "M", "OBX(2)-6.3": "ISO+", "AL1-3.2": "ASPIRIN",
		"DG1-3.2": "CHEST PAIN, UNSPECIFIED", "DG1-6": "A",
	}},
}

func TestPublicSamples(t *testing.T) {
	for _, s := range publicSamples {
		t.Run(s.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/public", s.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			paths := make([]string, 0, len(s.want))
			for p := range s.want {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			for _, p := range paths {
				if got := m.Get(p); got != s.want[p] {
					t.Errorf("%s = %q, want %q", p, got, s.want[p])
				}
			}
			if m.Charset() != s.charset {
				t.Errorf("charset %s, want %s", m.Charset(), s.charset)
			}
			if s.check != nil {
				s.check(t, m)
			}
			checkRoundTrip(t, s.file, m, paths)
		})
	}
}

// TestPublicBatch reads a FHS/BHS batch file of the Victorian Department of
// Health (via python-hl7).
func TestPublicBatch(t *testing.T) {
	data, err := os.ReadFile("testdata/public/python-hl7_batch_vinah.hl7")
	if err != nil {
		t.Fatal(err)
	}
	f, err := SplitBatches(data)
	if err != nil {
		t.Fatal(err)
	}
	if !f.IsBatch() || f.Header == nil || f.Trailer == nil || len(f.Batches) != 1 || len(f.Batches[0].Messages) != 1 {
		t.Fatalf("batch file read as %+v", f)
	}
	if got := string(f.Batches[0].Trailer); got != "BTS|1" {
		t.Errorf("BTS %q", got)
	}
	m, err := Parse(f.Batches[0].Messages[0])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"MSH-3": "", "MSH-4": "ABCHS", "MSH-6": "AUSDHSV", "MSH-9.3": "ADT_A01", "MSH-10": "12334456778890",
		"MSH-15": "NE", "MSH-17": "AU", "MSH-18": "ASCII", "PID-3.1": "0000112234", "PID-3.5": "A",
		"PID-5.7": "S", "PID-11.3": "RICHMOND", "PV1-6.6": "1",
	}
	var paths []string
	for p, w := range want {
		paths = append(paths, p)
		if got := m.Get(p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	var names []string
	for i := 0; i < m.SegmentCount(); i++ {
		names = append(names, m.SegmentName(i))
	}
	if strings.Join(names, ",") != "MSH,EVN,PID,PD1,NK1,PV1" {
		t.Errorf("segments %v", names)
	}
	sort.Strings(paths)
	checkRoundTrip(t, "batch message", m, paths)
}

// TestPublicRejected: python-hl7's message with $ and % as separators has
// no MSH-9; it is refused naming MSH-9, and the reply speaks its delimiters.
func TestPublicRejected(t *testing.T) {
	data, err := os.ReadFile("testdata/public/python-hl7_nonstandard_separators.hl7")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data)
	var pe *ParseError
	if !errors.Is(err, ErrEmptyMessageType) || !errors.As(err, &pe) || pe.Segment != "MSH" || pe.Field != 9 {
		t.Fatalf("err = %v, want ErrEmptyMessageType at MSH-9", err)
	}
	r, err := Parse(BuildAckForBytes(data, CodeAR, []AckError{AckErrorFor(pe)}, ackNow, "R1"))
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Delimiters(); d.Field != '$' || d.Component != '%' {
		t.Errorf("reply delimiters %+v, want the request's $ and %%", d)
	}
	if r.Get("MSH-5") != "GHH LAB" || r.Get("MSA-1") != "AR" || string(r.Raw("ERR-2")) != "MSH%1%9" {
		t.Errorf("reply MSH-5 %q MSA-1 %q ERR-2 %q", r.Get("MSH-5"), r.Get("MSA-1"), r.Raw("ERR-2"))
	}
}
