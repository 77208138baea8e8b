package join

import (
	"testing"

	"github.com/hinscore/hinscore/services/lib/domain/ids"
)

// TestOutcomeIDMatchesDomain keeps the join's reused-hash outcome ids equal
// to ids.Outcome, the contract every consumer of OUTCOMES relies on.
func TestOutcomeIDMatchesDomain(t *testing.T) {
	join := newOutcomeIDs()
	for _, c := range []struct{ network, key string }{
		{"netA", "netA|CLINIC|Q1"}, {"n", ""}, {"net-b", "placer:ÄÖ\x00x"}, {"netA", "netA|CLINIC|Q1"},
	} {
		var id [36]byte
		join.outcomeID(&id, c.network, c.key)
		if got, want := string(id[:]), ids.Outcome(c.network, c.key).String(); got != want {
			t.Errorf("outcomeID(%q, %q) = %s, ids.Outcome says %s", c.network, c.key, got, want)
		}
	}
}
