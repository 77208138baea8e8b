package scorecard

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"google.golang.org/protobuf/proto"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/bus"
)

// otherNetworks matches anything that names the south or east network of
// figuresWorld or one of their participants: the network names, the
// organisations' ids and names, their identifiers.
var otherNetworks = regexp.MustCompile(`(?i)\b(south|east)\b|\b(south-1|south-2|east-1)\b|South General|South Infirmary|East Clinic|\b(S1|S2|E1)\b`)

// TestOperatorCopyNamesNoPeer builds 2026-05 of figuresWorld, where north's
// peers (south: 112 requests, two responders of 52 and 60, named on its
// analyst card; east, 10 requests, only in the directory and the data), and checks that north's operator copy, as files and
// as the message on scorecards.north, names none of them, while still
// showing them in aggregate.
func TestOperatorCopyNamesNoPeer(t *testing.T) {
	conn := testDatabase(t)
	insertObs(t, conn, figuresWorld())
	ctx := context.Background()
	cards, err := Build(ctx, conn, Query{Granularity: Month, From: may, To: may.AddDate(0, 1, 0), ClosedBefore: may.AddDate(0, 2, 0)}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var north *hinscorev1.Scorecard
	for _, c := range cards {
		if c.GetNetwork() == "north" {
			north = c
		}
	}
	if north == nil {
		t.Fatal("no north card")
	}
	// The analyst copy names its peers: the check below is not vacuous.
	if len(north.GetPeers()) != 1 || north.GetPeers()[0].GetNetwork() != "south" || north.GetPeerResponders().GetCount() < 2 || north.GetPeerNetworks().GetCount() != 1 {
		t.Fatalf("north's analyst card: peers %v, peer responders %v, peer networks %v", north.GetPeers(), north.GetPeerResponders(), north.GetPeerNetworks())
	}
	analyst, err := Marshal(north)
	if err != nil {
		t.Fatal(err)
	}
	if !otherNetworks.Match(analyst) {
		t.Error("the analyst copy does not name south")
	}

	out := t.TempDir()
	if err := WriteFiles(out, cards); err != nil {
		t.Fatal(err)
	}
	js := testJetStream(t)
	if err := Deliver(ctx, conn, js, Month, []*hinscorev1.Scorecard{north}); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, bus.StreamScorecards)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, bus.ScorecardSubject("north"))
	if err != nil {
		t.Fatal(err)
	}
	var published hinscorev1.Scorecard
	if err := proto.Unmarshal(msg.Data, &published); err != nil {
		t.Fatal(err)
	}
	if published.GetCopy() != CopyOperator || published.GetPeerResponders().GetCount() != north.GetPeerResponders().GetCount() {
		t.Errorf("published: copy %q, peer responders %v", published.GetCopy(), published.GetPeerResponders())
	}
	onBus, err := Marshal(&published)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string][]byte{"scorecards.north message": onBus}
	for _, ext := range []string{"json", "csv", "html"} {
		b, err := os.ReadFile(filepath.Join(out, "2026-05", "north."+ext))
		if err != nil {
			t.Fatal(err)
		}
		outputs["north."+ext] = b
	}
	for name, b := range outputs {
		if m := otherNetworks.FindAll(b, 5); len(m) > 0 {
			t.Errorf("%s names other networks' participants: %q", name, m)
		}
	}
	// Their own participants are named.
	for name, b := range outputs {
		if !regexp.MustCompile(`North General`).Match(b) {
			t.Errorf("%s does not name north's own participants", name)
		}
	}
}
