package main

import (
	"errors"
	"testing"
)

func TestSplice(t *testing.T) {
	in := "# x\n\n## Config\n" + begin + "\n| old |\n" + end + "\nA bad value stops start-up.\n"
	got, err := splice([]byte(in), "| new |\n")
	if want := "# x\n\n## Config\n" + begin + "\n| new |\n" + end + "\nA bad value stops start-up.\n"; err != nil || string(got) != want {
		t.Fatalf("splice = %q, %v\nwant %q", got, err, want)
	}
	if _, err := splice([]byte("# no table\n"), "| new |\n"); !errors.Is(err, ErrNoMarkers) {
		t.Fatalf("without markers: %v", err)
	}
}

// TestCommittedTablesAreCurrent fails when a README's table no longer is
// what the configurations declare (make generate rewrites them).
func TestCommittedTablesAreCurrent(t *testing.T) {
	if err := realMain([]string{"-check", "-root", "../../../.."}); err != nil {
		t.Fatal(err)
	}
}
