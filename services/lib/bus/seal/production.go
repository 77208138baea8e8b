package seal

import "github.com/hinscore/hinscore/services/lib/service"

// ProductionProblems refuses the public development key: with it anyone
// opens the original messages in EVENTS.
func (k Keys) ProductionProblems(ps *service.Problems) {
	if k.RawKeys != nil && k.RawKeys.IsDev() {
		ps.Add(EnvRawKeys, "the public development key %q: anyone could open the original messages sealed in EVENTS", "dev")
	}
}
