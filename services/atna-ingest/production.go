package atnaingest

import "github.com/hinscore/hinscore/services/lib/service"

// ProductionRefusals: in production every stream listener speaks TLS and
// takes only client certificates of its own network, as MLLP's; a UDP
// listener, which no certificate protects and whose sender's address
// anyone can forge, is refused.
func (c Config) ProductionRefusals(ps *service.Problems) {
	c.limits().RequireIdentity(ps, c.Listeners)
	if len(c.UDP) > 0 {
		ps.Add("HINSCORE_ATNA_UDP", "UDP carries no network identity (anyone may send a datagram as any network): use syslog over TLS")
	}
}
