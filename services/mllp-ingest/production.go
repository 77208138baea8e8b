package mllpingest

import "github.com/hinscore/hinscore/services/lib/service"

// ProductionRefusals: in production every MLLP listener speaks TLS and
// takes only client certificates of its own network (a CA of its own, or
// the shared CA with HINSCORE_MLLP_TLS_CLIENT_URI), since a message's
// network is the listener it came in on.
func (c Config) ProductionRefusals(ps *service.Problems) { c.limits().RequireIdentity(ps, c.Listeners) }
