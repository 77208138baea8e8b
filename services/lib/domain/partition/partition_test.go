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

func TestWindowedKeys(t *testing.T) {
	const w = 300_000
	a := Windowed("net|xca|q1", 1_000_000, w)
	if a != "net|xca|q1|@w3" {
		t.Fatalf("Windowed = %q", a)
	}
	if got := Windowed("k", -1, w); got != "k|@w-1" {
		t.Errorf("a time before the epoch is in window -1, got %q", got)
	}
	base, n, ok := SplitWindowed(a)
	if !ok || base != "net|xca|q1" || n != 3 {
		t.Errorf("SplitWindowed(%q) = %q %d %v", a, base, n, ok)
	}
	for _, k := range []string{"net|FAC|Q1", "x|@wabc", ""} {
		if _, _, ok := SplitWindowed(k); ok {
			t.Errorf("%q is not a windowed key", k)
		}
		if Neighbour(k, 1) != "" {
			t.Errorf("Neighbour of %q must be empty", k)
		}
	}
	if got := Neighbour(a, -1); got != "net|xca|q1|@w2" {
		t.Errorf("Neighbour(-1) = %q", got)
	}
	// Every window of one base is in the base's partition.
	for d := int64(-3); d <= 3; d++ {
		if Of(Key(Neighbour(a, d), "ev"), 16) != Of("net|xca|q1", 16) {
			t.Errorf("window %d of a base is in another partition", 3+d)
		}
	}
	if Key("net|FAC|Q1", "ev") != "net|FAC|Q1" || Key("", "ev") != "ev" {
		t.Error("Key changed for keys that are not windowed")
	}
}

func TestTwoSidedKeys(t *testing.T) {
	tx := Transaction("net|xca|patient_discovery|qid:1.2.3^7")
	if tx != "net|xca|patient_discovery|qid:1.2.3^7|@t" {
		t.Fatalf("Transaction = %q", tx)
	}
	if _, _, ok := SplitWindowed(tx); ok || Neighbour(tx, 1) != "" {
		t.Error("a transaction key is not windowed: it has no neighbours")
	}
	if Key(tx, "ev") != tx {
		t.Error("a transaction key is partitioned by itself")
	}
	for key, want := range map[string]bool{
		tx:                                true,
		Windowed("net|xca|q", 1, 300_000): true,
		"net|FAC|Q1":                      false,
		"net|soap|urn:uuid:1":             false,
		"":                                false,
	} {
		if TwoSided(key) != want {
			t.Errorf("TwoSided(%q) = %v", key, !want)
		}
	}
}
