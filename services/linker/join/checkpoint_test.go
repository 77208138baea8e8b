package join_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/linker/join"
	"github.com/hinscore/hinscore/services/linker/join/jointest"
)

// TestCheckpointEveryCut runs every case of TestChains' table, and the
// overflow cases, cutting it at every position: checkpoint, restore into a
// fresh join, go on. The outcomes must be exactly the uninterrupted ones.
func TestCheckpointEveryCut(t *testing.T) {
	for _, tc := range append(chainCases(), overflowCases()...) {
		t.Run(tc.name, func(t *testing.T) {
			r := testRules(tc.cfg)
			for cut := 0; cut <= len(tc.events); cut++ {
				got := jointest.Run(t, r, tc.events, cut)
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
	r := testRules(func(r *join.Rules) { r.MaxPending = 40 }) // the cap closes some chains too
	events := jointest.GenEvents(5, 3000)
	run := func(cuts map[int]bool) []*hinscorev1.Outcome {
		j := join.New(r)
		var outs []*hinscorev1.Outcome
		for i, e := range events {
			if cuts[i] {
				j = jointest.Restored(t, j, r, join.Position{EventsSeq: uint64(i)})
			}
			outs = jointest.Observe(j, e, jointest.T0, outs)
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
		if len(want[i].ReasonCodes) > 0 && want[i].ReasonCodes[len(want[i].ReasonCodes)-1] == join.OverflowReason {
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
	r := testRules(nil)
	j := join.New(r)
	for _, e := range jointest.GenEvents(6, 50)[:60] {
		jointest.Observe(j, e, jointest.T0, nil)
	}
	data := j.Snapshot(nil, join.Position{Partition: 2, EventsSeq: 60, MarksSeq: 3})
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
			d := append([]byte(join.CheckpointMagic), 2)
			return join.AppendCRC(d)
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := join.Restore(r, tc.data); !errors.Is(err, join.ErrBadCheckpoint) {
				t.Fatalf("restore: %v, want ErrBadCheckpoint", err)
			}
		})
	}
}

// TestCheckpointGolden restores checkpoints written by every schema version
// (testdata/checkpoint/v<N>.bin; version 1 from the events of GenEvents(8,
// 40), version 2, which adds the cross-community fields to the profiles,
// also from cross-community traffic): a later linker must still read them
// and go on exactly as the join that wrote them. LINKER_UPDATE_GOLDEN=1
// rewrites the current version's file; do it only when the format changes
// (and then bump CheckpointVersion, keeping the older files).
func TestCheckpointGolden(t *testing.T) {
	r := testRules(nil)
	for _, g := range []struct {
		version int
		events  []*hinscorev1.ExchangeEvent
	}{
		{1, jointest.GenEvents(8, 40)},
		{2, mixed(jointest.GenEvents(8, 40), jointest.GenCrossEvents(8, 40))},
	} {
		t.Run(fmt.Sprintf("v%d", g.version), func(t *testing.T) {
			path := filepath.Join("testdata", "checkpoint", fmt.Sprintf("v%d.bin", g.version))
			goldenResumes(t, r, g.events, path, g.version == join.CheckpointVersion)
		})
	}
}

// mixed is the events of a and b in event-time order, b's final tick last.
func mixed(a, b []*hinscorev1.ExchangeEvent) []*hinscorev1.ExchangeEvent {
	out := slices.Concat(a[:len(a)-1], b[:len(b)-1])
	slices.SortStableFunc(out, func(x, y *hinscorev1.ExchangeEvent) int { return int(x.EventTimeMs - y.EventTimeMs) })
	return append(out, b[len(b)-1])
}

// goldenResumes restores the checkpoint at path, written after the first
// half of events, and checks that the rest gives the outcomes an
// uninterrupted join gives; current says the file may be rewritten.
func goldenResumes(t *testing.T, r join.Rules, events []*hinscorev1.ExchangeEvent, path string, current bool) {
	half := len(events) / 2
	at := join.Position{Partition: 3, EventsSeq: uint64(half), MarksSeq: 7}
	if current && os.Getenv("LINKER_UPDATE_GOLDEN") == "1" {
		j := join.New(r)
		for _, e := range events[:half] {
			jointest.Observe(j, e, jointest.T0, nil)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, j.Snapshot(nil, at), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, pos, err := join.Restore(r, data)
	if err != nil {
		t.Fatal(err)
	}
	if pos != at {
		t.Fatalf("position %+v", pos)
	}
	whole := join.New(r)
	var want, got []*hinscorev1.Outcome
	for i, e := range events {
		want = jointest.Observe(whole, e, jointest.T0, want)
		if i >= half {
			got = jointest.Observe(j, e, jointest.T0, got)
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
	r := testRules(nil)
	j := join.New(r)
	for _, e := range jointest.GenEvents(9, 12) {
		jointest.Observe(j, e, jointest.T0, nil)
	}
	body := func(d []byte) []byte { return d[len(join.CheckpointMagic) : len(d)-4] }
	f.Add(body(j.Snapshot(nil, join.Position{Partition: 1, EventsSeq: 9})))
	f.Add(body(join.New(r).Snapshot(nil, join.Position{})))
	xc := join.New(r)
	cross := jointest.GenCrossEvents(9, 12)
	for _, e := range cross[:len(cross)-1] { // not its last tick: the chains are still there
		jointest.Observe(xc, e, jointest.T0, nil)
	}
	f.Add(body(xc.Snapshot(nil, join.Position{Partition: 2, EventsSeq: 40})))
	f.Fuzz(func(t *testing.T, b []byte) {
		data := join.AppendCRC(append([]byte(join.CheckpointMagic), b...))
		j, _, err := join.Restore(r, data)
		if err != nil {
			return
		}
		for _, e := range jointest.GenEvents(10, 5) {
			jointest.Observe(j, e, jointest.T0, nil)
		}
		jointest.AdvanceIdle(j, jointest.T0.Add(48*time.Hour), jointest.T0, nil)
		j.Snapshot(nil, join.Position{})
	})
}
