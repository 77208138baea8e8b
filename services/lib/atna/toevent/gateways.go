package toevent

import (
	"strings"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/lib/atna"
)

// gateways are a record's participants by the part they play: the
// initiating gateway (the requester's side), the responding gateway and
// the human requestor, each nil when absent.
type gateways struct {
	initiating, responding, human *atna.Participant
}

// gatewaysOf finds the two gateways by their roles (ITI TF-2b 3.55.5.1,
// 3.38.5.1, 3.39.5.1): in a query (ITI-55, ITI-38) the Source (110153) is
// the initiating gateway and the Destination (110152) the responding one;
// in a retrieve (ITI-39) the documents flow the other way, so the Source
// is the responding gateway. The human requestor is a participant that is
// the requestor and plays neither gateway's role: the person of the XUA
// assertion, never an organisation.
func gatewaysOf(a *atna.Audit, tx transaction) gateways {
	var g gateways
	for i := range a.Participants {
		p := &a.Participants[i]
		switch {
		case hasRole(p, roleSource):
			if tx.retrieve {
				g.responding = first(g.responding, p)
			} else {
				g.initiating = first(g.initiating, p)
			}
		case hasRole(p, roleDestination):
			if tx.retrieve {
				g.initiating = first(g.initiating, p)
			} else {
				g.responding = first(g.responding, p)
			}
		case p.UserIsRequestor:
			g.human = first(g.human, p)
		}
	}
	return g
}

func first(have, p *atna.Participant) *atna.Participant {
	if have != nil {
		return have
	}
	return p
}

func hasRole(p *atna.Participant, code string) bool {
	for _, c := range p.RoleIDCodes {
		if strings.TrimSpace(c.Code) == code {
			return true
		}
	}
	return false
}

// sideOf decides which gateway wrote the record. Both gateways audit the
// same transaction with the same two gateway participants, so the
// participants alone do not tell; what differs is who is speaking. The
// evidence, strongest first:
//  1. ITI-39: the EventID. The responding gateway records Export (110106),
//     the initiating gateway Import (110107).
//  2. The AuditSourceIdentification names the writer: a gateway
//     participant that is the audit source (its UserID, AlternativeUserID,
//     NetworkAccessPointID or the host of its UserID equals the
//     AuditSourceID or AuditEnterpriseSiteID) is the writer.
//  3. The audit source's site is a home community id (gateways commonly
//     set AuditEnterpriseSiteID so): the responding community's, as the
//     request's homeCommunityID names it, is the responding gateway's
//     record; another community's is the initiating gateway's.
//  4. The process id: IHE puts AlternativeUserID (the process id) on the
//     writer's own participant only, since a gateway cannot know the
//     other's; one gateway participant with it is the writer.
//  5. A human requestor: only the initiating gateway knows the person
//     behind the request (from its XUA assertion it is the one that sends).
//  6. A record with one gateway participant that is not the audit source
//     was written by the other gateway (each knows the other's address).
//
// Nothing of the above: SIDE_UNSPECIFIED, and the events carry the reason
// code "atna|side-unknown".
func sideOf(a *atna.Audit, tx transaction, g gateways, respComm string) hinscorev1.Side {
	switch a.Event.ID.Code {
	case eventExport:
		return hinscorev1.Side_SIDE_RESPONDING
	case eventImport:
		return hinscorev1.Side_SIDE_INITIATING
	}
	ini, resp := isSource(g.initiating, a.Source), isSource(g.responding, a.Source)
	if ini != resp {
		return sideIf(ini)
	}
	if site := siteCommunity(a.Source); site != "" && respComm != "" {
		return sideIf(site != respComm)
	}
	ini, resp = hasProcess(g.initiating), hasProcess(g.responding)
	if ini != resp {
		return sideIf(ini)
	}
	if g.human != nil {
		return hinscorev1.Side_SIDE_INITIATING
	}
	if a.Source.ID != "" && (g.initiating == nil) != (g.responding == nil) {
		return sideIf(g.initiating == nil)
	}
	return hinscorev1.Side_SIDE_UNSPECIFIED
}

// siteCommunity is the audit source's home community id, when its site
// (or, failing that, its id) is one.
func siteCommunity(s atna.Source) string {
	if c := communityID(s.EnterpriseSiteID); c != "" {
		return c
	}
	return communityID(s.ID)
}

// writerCommunity fills the writer's own community from its site when the
// record names it nowhere else: a responding gateway's record may lack the
// requester's community, never its own.
func writerCommunity(src atna.Source, side hinscorev1.Side, req, resp string) (string, string) {
	site := siteCommunity(src)
	switch {
	case site == "":
	case side == hinscorev1.Side_SIDE_INITIATING && req == "":
		req = site
	case side == hinscorev1.Side_SIDE_RESPONDING && resp == "":
		resp = site
	}
	return req, resp
}

func sideIf(initiating bool) hinscorev1.Side {
	if initiating {
		return hinscorev1.Side_SIDE_INITIATING
	}
	return hinscorev1.Side_SIDE_RESPONDING
}

func hasProcess(p *atna.Participant) bool {
	return p != nil && strings.TrimSpace(p.AlternativeUserID) != ""
}

// isSource reports whether the participant is the audit source.
func isSource(p *atna.Participant, s atna.Source) bool {
	if p == nil {
		return false
	}
	names := []string{p.UserID, p.AlternativeUserID, p.NetworkAccessPointID, host(p.UserID)}
	for _, src := range []string{s.ID, s.EnterpriseSiteID} {
		src = strings.TrimSpace(src)
		if src == "" {
			continue
		}
		for _, n := range names {
			if n = strings.TrimSpace(n); n != "" && strings.EqualFold(n, src) {
				return true
			}
		}
	}
	return false
}

// anonymous is the WS-Addressing ReplyTo that many initiating gateways
// send, and record as their UserID: an address that names nobody.
const anonymous = "http://www.w3.org/2005/08/addressing/anonymous"

// host is the host of an endpoint URL (scheme://[user@]host[:port]/...),
// lower case, "" for anything else. Read by hand: net/url was a tenth of
// the mapping's time, and only the host is wanted.
func host(s string) string {
	s = strings.TrimSpace(s)
	_, rest, ok := strings.Cut(s, "://")
	if !ok || s == anonymous {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") { // an IPv6 literal
		if i := strings.IndexByte(rest, ']'); i > 0 {
			return strings.ToLower(rest[1:i])
		}
		return ""
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return strings.ToLower(rest)
}

// orgOf is a gateway's organisation as the record names it: the host of
// its endpoint (the responding gateway's SOAP endpoint, the initiating
// gateway's ReplyTo), else its home community id when its UserID is one,
// else its network access point. Never the human requestor's name.
func orgOf(p *atna.Participant) string {
	if p == nil {
		return ""
	}
	if h := host(p.UserID); h != "" {
		return h
	}
	if c := communityID(p.UserID); c != "" {
		return c
	}
	if n := strings.TrimSpace(p.NetworkAccessPointID); n != "" {
		return strings.ToLower(n)
	}
	if u := strings.TrimSpace(p.UserID); u != anonymous {
		return u
	}
	return ""
}

// orgs are the requester's and the responder's organisations, by the
// identifier an organisation directory knows best: the side's home
// community id (what XCA names a community's organisation by, which both
// records carry for the responder); else, for the writer's own side, the
// audit source's site; else the gateway's endpoint host or network access
// point (orgOf). Never the human requestor.
func (g gateways) orgs(side hinscorev1.Side, src atna.Source, reqComm, respComm string) (requester, responder string) {
	requester, responder = reqComm, respComm
	if requester == "" && side == hinscorev1.Side_SIDE_INITIATING {
		requester = siteOf(src)
	}
	if responder == "" && side == hinscorev1.Side_SIDE_RESPONDING {
		responder = siteOf(src)
	}
	if requester == "" {
		requester = orgOf(g.initiating)
	}
	if responder == "" {
		responder = orgOf(g.responding)
	}
	return requester, responder
}

// siteOf is the organisation of the system that wrote the record.
func siteOf(s atna.Source) string {
	if v := strings.TrimSpace(s.EnterpriseSiteID); v != "" {
		return v
	}
	return strings.TrimSpace(s.ID)
}

// communitiesOf reads the home community ids. The responding community is
// the ihe:homeCommunityID detail of the query or document objects (the
// community the request was addressed to, which both gateways record);
// the requesting community is the homeCommunityId attribute of the XUA
// assertion where the record keeps it as a detail
// (urn:nhin:names:saml:homeCommunityId). A gateway participant whose
// UserID is a urn:oid is its community when no detail says.
func communitiesOf(a *atna.Audit, g gateways) (requester, responder string) {
	for i := range a.Objects {
		for _, d := range a.Objects[i].Details {
			if !isHomeCommunity(d.Type) {
				continue
			}
			c := communityID(string(d.Value))
			if isAssertion(d.Type) {
				requester = firstNonEmpty(requester, c)
			} else {
				responder = firstNonEmpty(responder, c)
			}
		}
	}
	if requester == "" && g.initiating != nil {
		requester = communityID(g.initiating.UserID)
	}
	if responder == "" && g.responding != nil {
		responder = communityID(g.responding.UserID)
	}
	return requester, responder
}

func firstNonEmpty(have, v string) string {
	if have != "" {
		return have
	}
	return v
}

// isHomeCommunity matches the detail types gateways use for a home
// community id: ihe:homeCommunityID, urn:ihe:iti:xca:2010:homeCommunityId,
// urn:nhin:names:saml:homeCommunityId.
func isHomeCommunity(typ string) bool {
	return strings.HasSuffix(strings.ToLower(strings.TrimSpace(typ)), "homecommunityid")
}

func isAssertion(typ string) bool {
	t := strings.ToLower(typ)
	return strings.Contains(t, "saml") || strings.Contains(t, "xua")
}

// communityID is a home community id in its urn:oid form ("urn:oid:1.2.3",
// also from a bare OID), "" when s is neither.
func communityID(s string) string {
	s = strings.TrimSpace(s)
	oid := s
	if len(s) > 8 && strings.EqualFold(s[:8], "urn:oid:") {
		oid = s[8:]
	}
	if oid == "" || strings.Trim(oid, "0123456789.") != "" || !strings.Contains(oid, ".") {
		return ""
	}
	return "urn:oid:" + oid
}
