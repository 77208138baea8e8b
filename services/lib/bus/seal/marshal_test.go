package seal

import (
	"testing"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/domain/partition"
)

func TestMarshalEventSealsAndLeavesTheEvent(t *testing.T) {
	keys := MustParseRawKeys(testKeyA)
	ev := &hinscorev1.ExchangeEvent{EventId: "e1", CorrelationKey: "north|A|1"}
	bus.Route(ev, 8)
	if ev.Partition != partition.Of("north|A|1", 8) {
		t.Errorf("partition %d, want the correlation key's", ev.Partition)
	}
	b, err := MarshalEvent(ev, keys, []byte("MSH|secret"))
	if err != nil || ev.RawSealed != nil {
		t.Fatalf("MarshalEvent: %v, sealed left on the event: %v", err, ev.RawSealed != nil)
	}
	var got hinscorev1.ExchangeEvent
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if plain, err := keys.Open("e1", got.RawSealed); err != nil || string(plain) != "MSH|secret" || got.Raw != nil {
		t.Errorf("encoded event: raw %q, sealed opens to %q (%v)", got.Raw, plain, err)
	}
	if b, _ := MarshalEvent(ev, keys, nil); proto.Unmarshal(b, &got) != nil || got.RawSealed != nil {
		t.Error("an event without bytes encoded with some")
	}
	noKey := &hinscorev1.ExchangeEvent{EventId: "e2"}
	bus.Route(noKey, 8)
	if noKey.Partition != partition.Of("e2", 8) {
		t.Errorf("without a correlation key: partition %d, want the event id's", noKey.Partition)
	}
}
