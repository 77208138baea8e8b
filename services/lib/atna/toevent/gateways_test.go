package toevent

import "testing"

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://XCA.responder.example.com:8443/RespondingGateway/query": "xca.responder.example.com",
		"http://user@initiating.example.org/xcpd?x=1":                    "initiating.example.org",
		"https://[2001:db8::7]:443/gw":                                   "2001:db8::7",
		"http://www.w3.org/2005/08/addressing/anonymous":                 "",
		"urn:oid:1.2.3":          "",
		"RESPONDER-GW-1":         "",
		"https://gw.example.org": "gw.example.org",
	} {
		if got := host(in); got != want {
			t.Errorf("host(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommunityID(t *testing.T) {
	for in, want := range map[string]string{
		"urn:oid:1.2.3.4": "urn:oid:1.2.3.4", "URN:OID:1.2.3": "urn:oid:1.2.3", "1.2.840.1": "urn:oid:1.2.840.1",
		"urn:oid:": "", "12": "", "https://x.example": "", "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d": "",
	} {
		if got := communityID(in); got != want {
			t.Errorf("communityID(%q) = %q, want %q", in, got, want)
		}
	}
}
