package ids

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestDeterministicIDs(t *testing.T) {
	a := Event("north", []byte("MSH|1"))
	if a != Event("north", []byte("MSH|1")) {
		t.Fatal("Event not deterministic")
	}
	if a == Event("south", []byte("MSH|1")) || a == Event("north", []byte("MSH|2")) {
		t.Fatal("Event collides across networks or bytes")
	}
	// The ids of stored rows and Msg-Ids must never change: Event is the
	// version-5 UUID of network, a zero byte and the bytes.
	for _, tc := range []struct{ network, raw string }{
		{"north", "MSH|1"}, {"", ""}, {"n", strings.Repeat("MSH|^~\\&|A|B\r", 300)}, {"net-b_2", "\x00\xff"},
	} {
		if got, want := Event(tc.network, []byte(tc.raw)), uuid.NewSHA1(eventNamespace, []byte(tc.network+"\x00"+tc.raw)); got != want {
			t.Errorf("Event(%q, %d bytes) = %s, want %s", tc.network, len(tc.raw), got, want)
		}
	}
	if got := Event("north", []byte("MSH|1")).String(); got != "1e0d3234-119b-5533-b721-0de36d083f5e" {
		t.Errorf("Event changed: %s", got)
	}
	if Outcome("n", "k") != Outcome("n", "k") || Outcome("n", "k") == Outcome("n", "k2") {
		t.Fatal("Outcome")
	}
	if got := Outcome("north", "north|FAC|Q1").String(); got != uuid.NewSHA1(outcomeNamespace, []byte("north\x00north|FAC|Q1")).String() {
		t.Errorf("Outcome changed: %s", got)
	}
}
