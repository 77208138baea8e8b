package linker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// restored round-trips a join through a checkpoint.
func restored(t testing.TB, j *chains, r rules, pos position) *chains {
	t.Helper()
	data := j.snapshot(nil, pos)
	j2, got, err := restore(r, data)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got != pos {
		t.Fatalf("restored position %+v, want %+v", got, pos)
	}
	if j2.pending != j.pending || j2.chainCount() != j.chainCount() || j2.profiles.live() != j.profiles.live() {
		t.Fatalf("restored %d pending %d chains %d profiles, want %d %d %d",
			j2.pending, j2.chainCount(), j2.profiles.live(), j.pending, j.chainCount(), j.profiles.live())
	}
	return j2
}

// TestCheckpointEveryCut runs every case of TestChains' table, and the
// overflow cases, cutting it at every position: checkpoint, restore into a
// fresh join, go on. The outcomes must be exactly the uninterrupted ones.
func TestCheckpointEveryCut(t *testing.T) {
	for _, tc := range append(chainCases(), overflowCases()...) {
		t.Run(tc.name, func(t *testing.T) {
			r := testRules(t, tc.cfg)
			for cut := 0; cut <= len(tc.events); cut++ {
				j := newChains(r)
				var outs []*hinscorev1.Outcome
				for i, e := range tc.events {
					if i == cut {
						j = restored(t, j, r, position{partition: 1, eventsSeq: uint64(i)})
					}
					outs = j.observe(e, t0, outs)
				}
				var got []string
				for _, o := range outs {
					got = append(got, summarize(o).String())
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("cut at %d:\n got  %v\n want %v", cut, got, tc.want)
				}
			}
		})
	}
}

// TestCheckpointRandomCuts compares whole outcomes (every field) of a
// generated workload, with the join checkpointed and restored at random
// points, to an uninterrupted join.
func TestCheckpointRandomCuts(t *testing.T) {
	r := testRules(t, func(c *Config) { c.MaxPending = 40 }) // the cap closes some chains too
	events := genEvents(5, 3000)
	run := func(cuts map[int]bool) []*hinscorev1.Outcome {
		j := newChains(r)
		var outs []*hinscorev1.Outcome
		for i, e := range events {
			if cuts[i] {
				j = restored(t, j, r, position{eventsSeq: uint64(i)})
			}
			outs = j.observe(e, t0, outs)
		}
		return outs
	}
	want := run(nil)
	rng := rand.New(rand.NewPCG(5, 5))
	cuts := map[int]bool{}
	for range 25 {
		cuts[rng.IntN(len(events))] = true
	}
	got := run(cuts)
	if len(got) != len(want) {
		t.Fatalf("%d outcomes, want %d", len(got), len(want))
	}
	overflow := 0
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("outcome %d differs:\n got  %v\n want %v", i, got[i], want[i])
		}
		if len(want[i].ReasonCodes) > 0 && want[i].ReasonCodes[len(want[i].ReasonCodes)-1] == OverflowReason {
			overflow++
		}
	}
	if overflow == 0 {
		t.Fatal("the workload never hit the cap")
	}
}

// TestCheckpointRejectsCorruption flips bytes and truncates a checkpoint:
// each damaged copy is refused with ErrBadCheckpoint, never a panic.
func TestCheckpointRejectsCorruption(t *testing.T) {
	r := testRules(t, nil)
	j := newChains(r)
	for _, e := range genEvents(6, 50)[:60] {
		j.observe(e, t0, nil)
	}
	data := j.snapshot(nil, position{partition: 2, eventsSeq: 60, marksSeq: 3})
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"no magic", append([]byte("XXXX"), data[4:]...)},
		{"truncated", data[:len(data)/2]},
		{"flipped byte", func() []byte { d := append([]byte(nil), data...); d[len(d)/2] ^= 0x40; return d }()},
		{"bad checksum", func() []byte { d := append([]byte(nil), data...); d[len(d)-1] ^= 1; return d }()},
		{"future version", func() []byte {
			d := append([]byte(checkpointMagic), 2)
			return appendCRC(d)
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := restore(r, tc.data); !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("restore: %v, want ErrBadCheckpoint", err)
			}
		})
	}
}

func appendCRC(d []byte) []byte {
	var sum [4]byte
	c := crc32Of(d[len(checkpointMagic):])
	sum[0], sum[1], sum[2], sum[3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
	return append(d, sum[:]...)
}

// TestCheckpointGolden restores a checkpoint written by schema version 1
// (testdata/checkpoint/v1.bin, from the events of goldenEvents): a later
// linker must still read it and go on exactly as the join that wrote it.
// Regenerate with LINKER_UPDATE_GOLDEN=1 only when the format changes (and
// then bump CheckpointVersion).
func TestCheckpointGolden(t *testing.T) {
	r := testRules(t, nil)
	events := genEvents(8, 40)
	half := len(events) / 2
	path := filepath.Join("testdata", "checkpoint", "v1.bin")
	if os.Getenv("LINKER_UPDATE_GOLDEN") == "1" {
		j := newChains(r)
		for _, e := range events[:half] {
			j.observe(e, t0, nil)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, j.snapshot(nil, position{partition: 3, eventsSeq: uint64(half), marksSeq: 7}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, pos, err := restore(r, data)
	if err != nil {
		t.Fatal(err)
	}
	if pos != (position{partition: 3, eventsSeq: uint64(half), marksSeq: 7}) {
		t.Fatalf("position %+v", pos)
	}
	whole := newChains(r)
	var want, got []*hinscorev1.Outcome
	for i, e := range events {
		want = whole.observe(e, t0, want)
		if i >= half {
			got = j.observe(e, t0, got)
		}
	}
	// The uninterrupted join published some outcomes before the cut.
	want = want[len(want)-len(got):]
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("outcome %d after the golden checkpoint differs:\n got  %v\n want %v", i, got[i], want[i])
		}
	}
	if len(got) == 0 {
		t.Fatal("nothing decided after the golden checkpoint")
	}
}

// FuzzRestore feeds arbitrary checkpoint bodies (the checksum fixed up, so
// the mutations reach the decoder) to restore: it returns a join or an
// error, never panics, and a join it returns keeps working.
func FuzzRestore(f *testing.F) {
	r := testRules(f, nil)
	j := newChains(r)
	for _, e := range genEvents(9, 12) {
		j.observe(e, t0, nil)
	}
	body := func(d []byte) []byte { return d[len(checkpointMagic) : len(d)-4] }
	f.Add(body(j.snapshot(nil, position{partition: 1, eventsSeq: 9})))
	f.Add(body(newChains(r).snapshot(nil, position{})))
	f.Fuzz(func(t *testing.T, b []byte) {
		data := appendCRC(append([]byte(checkpointMagic), b...))
		j, _, err := restore(r, data)
		if err != nil {
			return
		}
		for _, e := range genEvents(10, 5) {
			j.observe(e, t0, nil)
		}
		j.advanceIdle(t0.Add(48*time.Hour), t0, nil)
		j.snapshot(nil, position{})
	})
}
