package partition

import (
	"testing"
	"time"
)

func TestPartitionIsStableAndSpread(t *testing.T) {
	if Of("k", 1) != 0 || Of("k", 0) != 0 {
		t.Fatal("one partition must be 0")
	}
	counts := make([]int, 4)
	for i := 0; i < 4000; i++ {
		p := Of("net|FAC|"+time.Duration(i).String(), 4)
		if p != Of("net|FAC|"+time.Duration(i).String(), 4) {
			t.Fatal("Of not deterministic")
		}
		counts[p]++
	}
	for p, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("partition %d got %d of 4000 keys", p, n)
		}
	}
	// Pinned: a change of hash would send a deployment's requests and
	// answers to different linkers.
	if got := Of("north|FAC|Q1", 16); got != 4 {
		t.Fatalf("Of(north|FAC|Q1, 16) = %d, was 4", got)
	}
	if got := Of("south|X|1", 7); got != 4 {
		t.Fatalf("Of(south|X|1, 7) = %d, was 4", got)
	}
}

func TestKeyAndCount(t *testing.T) {
	if Key("", "ev") != "ev" || Key("ck", "ev") != "ck" {
		t.Fatal("Key")
	}
	for _, n := range []Count{0, -1, Max + 1} {
		if n.Validate() == nil {
			t.Errorf("count %d accepted", n)
		}
	}
	for _, n := range []Count{1, Default, Max} {
		if err := n.Validate(); err != nil {
			t.Errorf("count %d: %v", n, err)
		}
	}
}
