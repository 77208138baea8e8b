package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/api/casepacket"
	"github.com/hinscore/hinscore/services/lib/domain/purpose"
)

// casePacket is what a packet's files are made of.
type casePacket struct {
	req       CaseRequest
	at        time.Time
	chains    []caseChain
	queries   []*RecordedQuery
	trail     []json.RawMessage
	source    string
	publicKey string
}

// CaseChainFile is chains/<id>.json: the chain as the chain view shows
// it, what decided its class, and whether it is a violation unit.
type CaseChainFile struct {
	Chain          ChainView      `json:"chain"`
	Classification Classification `json:"classification"`
	ViolationUnit  bool           `json:"violation_unit"`
}

// CaseRules is rules.json: the versions of the rules and mappings that
// decided the chains' classes, with the chains each decided, and the
// versions of the rules the packet itself applies.
type CaseRules struct {
	ViolationRuleVersion string          `json:"violation_rule_version"`
	ViolationRule        string          `json:"violation_rule"`
	PurposeTable         string          `json:"purpose_table"`
	DecidedBy            []CaseDecidedBy `json:"decided_by"`
}

// CaseDecidedBy is one pair of linker rule version and mapping version,
// with the classes it gave and the chains it gave them to.
type CaseDecidedBy struct {
	RuleVersion    string         `json:"rule_version"`
	MappingVersion string         `json:"mapping_version"`
	Classes        map[string]int `json:"classes"`
	Chains         []string       `json:"chains"`
}

// files returns the packet's members and its summary.
func (p casePacket) files() ([]casepacket.File, CaseSummary, error) {
	sum := p.summary()
	var (
		files []casepacket.File
		err   error
	)
	add := func(name string, x any) {
		data, jerr := json.MarshalIndent(x, "", "  ")
		if jerr != nil && err == nil {
			err = fmt.Errorf("api.casePacket %s: %w", name, jerr)
		}
		files = append(files, casepacket.File{Name: name, Data: append(data, '\n')})
	}
	files = append(files, casepacket.File{Name: "README.txt", Data: []byte(caseReadme)})
	add("summary.json", sum)
	add("rules.json", p.rules())
	add("queries.json", p.queries)
	var trail bytes.Buffer
	for _, line := range p.trail {
		trail.Write(line)
		trail.WriteByte('\n')
	}
	files = append(files, casepacket.File{Name: "audit.jsonl", Data: trail.Bytes()})
	for _, c := range p.chains {
		v := c.view
		add("chains/"+v.ID+".json", CaseChainFile{Chain: v, Classification: classificationOf(v), ViolationUnit: casepacket.ViolationUnit(v.Class, v.Purpose)})
		add("originals/"+v.ID+"/index.json", rawIndex(c.msgs))
		for i, msg := range c.msgs {
			if msg.Status == "ok" {
				files = append(files, casepacket.File{Name: "originals/" + v.ID + "/" + rawName(i, msg), Data: []byte(msg.Data)})
			}
		}
	}
	return files, sum, err
}

func (p casePacket) summary() CaseSummary {
	s := CaseSummary{Format: casepacket.Format, Responder: p.req.Responder, Period: p.req.Period.Label,
		PeriodStart: p.req.Period.Start.UTC().Format(time.RFC3339), PeriodEnd: p.req.Period.End.UTC().Format(time.RFC3339),
		GeneratedAt: p.at.Format(time.RFC3339), GeneratedBy: p.req.Who, Reason: p.req.Reason, Chains: len(p.chains),
		Classes: map[string]int{}, ViolationRuleVersion: casepacket.ViolationRuleVersion, ViolationRule: casepacket.ViolationRule,
		Violations: []string{}, ContradictedExceptions: []string{}, Originals: map[string]int{}, Queries: len(p.queries), AuditSource: p.source,
		AuditEntries: len(p.trail), PublicKey: p.publicKey}
	for _, c := range p.chains {
		v := c.view
		s.Classes[v.Class]++
		if v.RequiredResponse {
			s.RequiredResponse++
		}
		if casepacket.ViolationUnit(v.Class, v.Purpose) {
			s.ViolationUnits++
			s.Violations = append(s.Violations, v.ID)
		}
		if casepacket.ContradictedException(v.Class, v.Purpose, exceptionFlagged(v.ExceptionChecks)) {
			s.ContradictedExceptionUnits++
			s.ContradictedExceptions = append(s.ContradictedExceptions, v.ID)
		}
		for _, m := range c.msgs {
			s.Originals[m.Status]++
		}
	}
	return s
}

func (p casePacket) rules() CaseRules {
	r := CaseRules{ViolationRuleVersion: casepacket.ViolationRuleVersion, ViolationRule: casepacket.ViolationRule,
		PurposeTable: purpose.Version, DecidedBy: []CaseDecidedBy{}}
	at := map[[2]string]int{}
	for _, c := range p.chains {
		v := c.view
		k := [2]string{v.RuleVersion, v.MappingVersion}
		i, ok := at[k]
		if !ok {
			i = len(r.DecidedBy)
			at[k] = i
			r.DecidedBy = append(r.DecidedBy, CaseDecidedBy{RuleVersion: k[0], MappingVersion: k[1], Classes: map[string]int{}})
		}
		r.DecidedBy[i].Classes[v.Class]++
		r.DecidedBy[i].Chains = append(r.DecidedBy[i].Chains, v.ID)
	}
	slices.SortFunc(r.DecidedBy, func(a, b CaseDecidedBy) int {
		return strings.Compare(a.RuleVersion+"\x00"+a.MappingVersion, b.RuleVersion+"\x00"+b.MappingVersion)
	})
	return r
}

// caseReadme is README.txt, the first member: how to read and check.
const caseReadme = `hinscore case packet (` + casepacket.Format + `)

summary.json   the responder, the period, the classes, the violation units
               and the rule that counts them (violation_rule)
rules.json     the linker rule and mapping versions that decided each class
chains/ID.json each chain as the investigator's chain view shows it, what
               decided its class, and whether it is a violation unit
originals/ID/  the chain's original messages as the networks sent them
               (index.json lists every one, those not shown with why)
queries.json   every ClickHouse query the packet was built from: the SQL, the
               values bound to its ? in order, its settings, the rows it
               returned (run it again and compare)
audit.jsonl    the audit entries of every opening of these chains' original
               messages, the one made for this packet included
manifest.json  the SHA-256 of every other file, and the signer's public key
manifest.sig   the SHA-256 of manifest.json and its Ed25519 signature

Check it: hinscore case verify PACKET --public-key KEY (the key the
builder printed, from a source other than the packet). By hand: tar -xf
PACKET; every line of manifest.json's files matches sha256sum of its file;
manifest.sig's signature verifies manifest.json's bytes with public_key.
The signature proves the files are those the holder of the key signed;
it does not prove the networks' feeds were complete or true.
`

// exceptionFlagged reports whether a check of the chain's cited exception
// found the responder's behaviour contradicting it.
func exceptionFlagged(checks []ExceptionCheck) bool {
	return slices.ContainsFunc(checks, func(c ExceptionCheck) bool { return c.Flagged })
}
