package toevent

import (
	"errors"
	"strings"
	"testing"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

func TestLoadDirectory(t *testing.T) {
	d, err := LoadDirectory("testdata/orgs.csv")
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 {
		t.Errorf("Len = %d, want 3", d.Len())
	}
	tests := []struct {
		identifier, id, developer string
		ok                        bool
	}{
		{"HOSP_A", "org-hosp-a", "EpicCare", true},
		{"1.2.3", "org-hosp-a", "EpicCare", true},
		{"urn:oid:1.2.3", "org-hosp-a", "EpicCare", true},
		{"1234567893", "org-lab-b", "LabVendor", true},
		{"LAB_B", "org-lab-b", "LabVendor", true},
		{"NETB", "org-netb", "", true},
		{"hosp_a", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		o, ok := d.Lookup(tt.identifier)
		if ok != tt.ok || o.ID != tt.id || o.Developer != tt.developer {
			t.Errorf("Lookup(%q) = %+v, %v", tt.identifier, o, ok)
		}
	}
	if o, _ := d.Lookup("HOSP_A"); strings.Join(o.Networks, ",") != "neta,netb" || o.Name != "Hospital A" || o.Type != "provider" {
		t.Errorf("HOSP_A: %+v", o)
	}
	var none *Directory
	if _, ok := none.Lookup("HOSP_A"); ok || none.Len() != 0 {
		t.Error("nil directory finds something")
	}
}

func TestReadDirectoryErrors(t *testing.T) {
	tests := []struct{ name, csv, want string }{
		{"no identifier column", "name,type\nA,provider\n", `no "identifier" column`},
		{"empty identifier", "identifier,name\n ,A\n", "x.csv:2: empty identifier"},
		{"identifier twice", "identifier,org_id\nX,a\nX,b\n", `x.csv:3: identifier "X" names both "a" and "b"`},
		{"empty file", "", "header"},
		{"bad quoting", "identifier\n\"X\n", "x.csv"},
	}
	for _, tt := range tests {
		_, err := ReadDirectory(strings.NewReader(tt.csv), "x.csv")
		if !errors.Is(err, ErrDirectory) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := LoadDirectory("testdata/missing.csv"); err == nil {
		t.Error("missing file accepted")
	}
}

func TestMapWithDirectory(t *testing.T) {
	d, err := LoadDirectory("testdata/orgs.csv")
	if err != nil {
		t.Fatal(err)
	}
	mp := mapper
	mp.Orgs = d
	tests := []struct {
		name, msg, key, requester, responder string
		role                                 hinscorev1.Role
	}{
		{"namespace ids", qbpQ22, "neta|org-hosp-a|Q1", "org-hosp-a", "org-netb", hinscorev1.Role_ROLE_REQUEST},
		{"answer keyed by the same org", rspHead + "MSA|AA|Q1\rQAK|TAG1|OK\r", "neta|org-hosp-a|Q1", "org-hosp-a", "org-netb", hinscorev1.Role_ROLE_RESPONSE},
		{"universal id (OID) when the namespace is unknown", "MSH|^~\\&|EHR|XYZ^1.2.3^ISO|LAB|^1234567893^NPI|20260302095900||QRY^A19|Q7|P|2.3\r",
			"neta|org-hosp-a|Q7", "org-hosp-a", "org-lab-b", hinscorev1.Role_ROLE_REQUEST},
		{"application HD when the facility is empty", "MSH|^~\\&|HOSP_A||LAB_B||20260302095900||QRY^A19|Q8|P|2.3\r",
			"neta|org-hosp-a|Q8", "org-hosp-a", "org-lab-b", hinscorev1.Role_ROLE_REQUEST},
		{"unknown org: as spelt", "MSH|^~\\&|EHR|OTHER|HIE|NETB|20260302095900||QRY^A19|Q9|P|2.3\r",
			"neta|OTHER|Q9", "OTHER", "org-netb", hinscorev1.Role_ROLE_REQUEST},
	}
	for _, tt := range tests {
		_, ev, err := mp.MapBytes("neta", []byte(tt.msg), ingest)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if ev.CorrelationKey != tt.key || ev.RequesterOrg != tt.requester || ev.ResponderOrg != tt.responder || ev.Role != tt.role {
			t.Errorf("%s: key %q requester %q responder %q role %v", tt.name, ev.CorrelationKey, ev.RequesterOrg, ev.ResponderOrg, ev.Role)
		}
	}
	// Without a directory the application HD still names an org when the facility is empty.
	_, ev, err := mapper.MapBytes("neta", []byte("MSH|^~\\&|HOSP_A||LAB_B||20260302095900||QRY^A19|Q8|P|2.3\r"), ingest)
	if err != nil || ev.RequesterOrg != "HOSP_A" || ev.ResponderOrg != "LAB_B" {
		t.Errorf("no directory: %v %v", ev, err)
	}
}
