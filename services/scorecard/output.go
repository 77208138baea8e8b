package scorecard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
)

// pathSafe is what a network or period label may look like to become a
// file or directory name: network names come from the data, so they must
// not be able to climb out of the output directory.
var pathSafe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Marshal renders a scorecard as indented JSON with the proto field names.
// protojson deliberately varies its whitespace between builds, so the output
// is re-indented with encoding/json to make files byte-for-byte stable.
func Marshal(c *hinscorev1.Scorecard) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("scorecard.Marshal: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("scorecard.Marshal: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// WriteFiles writes, for each (analyst) card, the operator's copy as
// <dir>/<period>/<network>.{json,csv,html}, and for each period the
// analysts' cross-network list <dir>/<period>/offenders.{csv,html} built
// from the same cards, which must therefore be every network's. Each
// file is written to a hidden temporary file in the same directory and
// renamed over the old one, so a reader (a dashboard, a copy job) sees
// either the previous file or the new one, never half of one. The files
// are not fsynced: a card lost in a crash is rebuilt by the next run.
func WriteFiles(dir string, cards []*hinscorev1.Scorecard) error {
	if err := writeCards(dir, cards); err != nil {
		return err
	}
	return writeOffenders(dir, cards)
}

// checkNames refuses a card whose network or period cannot name a file.
func checkNames(cards []*hinscorev1.Scorecard) error {
	for _, c := range cards {
		if !pathSafe.MatchString(c.GetNetwork()) || !pathSafe.MatchString(c.GetPeriod()) || c.GetNetwork() == "offenders" {
			return fmt.Errorf("scorecard.WriteFiles: network %q / period %q cannot name a file", c.GetNetwork(), c.GetPeriod())
		}
	}
	return nil
}

// writeCards writes the operator's copy of each card.
func writeCards(dir string, cards []*hinscorev1.Scorecard) error {
	if err := checkNames(cards); err != nil {
		return err
	}
	for _, c := range cards {
		op := OperatorCopy(c)
		js, err := Marshal(op)
		if err != nil {
			return err
		}
		cs, err := CSV(op)
		if err != nil {
			return err
		}
		page, err := HTML(op)
		if err != nil {
			return err
		}
		if err := writeAll(filepath.Join(dir, c.GetPeriod()), map[string][]byte{
			c.GetNetwork() + ".json": js, c.GetNetwork() + ".csv": cs, c.GetNetwork() + ".html": page,
		}); err != nil {
			return err
		}
	}
	return nil
}

// writeOffenders writes the offenders list of each period of cards, which
// must hold every network's cards of those periods: the list is rebuilt
// from them, not merged with the file already there.
func writeOffenders(dir string, cards []*hinscorev1.Scorecard) error {
	if err := checkNames(cards); err != nil {
		return err
	}
	byPeriod := map[string][]*hinscorev1.Scorecard{}
	var periods []string
	for _, c := range cards {
		if len(byPeriod[c.GetPeriod()]) == 0 {
			periods = append(periods, c.GetPeriod())
		}
		byPeriod[c.GetPeriod()] = append(byPeriod[c.GetPeriod()], c)
	}
	for _, p := range periods {
		list := Offenders(byPeriod[p])
		cs, err := OffendersCSV(list)
		if err != nil {
			return err
		}
		page, err := OffendersHTML(p, byPeriod[p][0].GetFormula(), list)
		if err != nil {
			return err
		}
		if err := writeAll(filepath.Join(dir, p), map[string][]byte{"offenders.csv": cs, "offenders.html": page}); err != nil {
			return err
		}
	}
	return nil
}

// writeAll writes each named file of files into sub, in name order.
func writeAll(sub string, files map[string][]byte) error {
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return fmt.Errorf("scorecard.WriteFiles: %w", err)
	}
	for _, name := range sortedKeys(files) {
		if err := writeAtomic(filepath.Join(sub, name), files[name]); err != nil {
			return fmt.Errorf("scorecard.WriteFiles: %w", err)
		}
	}
	return nil
}

// writeAtomic replaces path with b through a temporary file in the same
// directory (rename is atomic only within one file system). The temporary
// name starts with a dot and does not end in .json, so globs for cards
// never match it.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		// CreateTemp makes the file private; cards are meant to be read.
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// classCount returns the count of one outcome class on a card.
func classCount(c *hinscorev1.Scorecard, class string) uint64 {
	for _, o := range c.GetOutcomes() {
		if o.GetOutcome() == class {
			return o.GetRate().GetCount()
		}
	}
	return 0
}

func pct(n, total uint64) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", 100*float64(n)/float64(total))
}

func ms(v uint64, have bool) string {
	if !have {
		return "-"
	}
	return fmt.Sprint(v)
}

// PrintTable prints one aligned line per card. Refused is refused_exception
// plus refused_unjustified; late is fulfilled_late.
func PrintTable(w io.Writer, cards []*hinscorev1.Scorecard) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\tperiod\trequests\tfulfilled %\tlate %\trefused %\tredirected %\tunanswered %\tsuspect %\tttf p50 ms\tttf p90 ms\tttf p99 ms\t")
	for _, c := range cards {
		n := c.GetRequests()
		l := c.GetTimeToFulfil()
		have := l.GetCount() > 0
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			c.GetNetwork(), c.GetPeriod(), n,
			pct(classCount(c, "fulfilled"), n),
			pct(classCount(c, "fulfilled_late"), n),
			pct(classCount(c, "refused_exception")+classCount(c, "refused_unjustified"), n),
			pct(classCount(c, "redirected"), n),
			pct(classCount(c, "unanswered"), n),
			pct(c.GetSuspect().GetCount(), n),
			ms(l.GetP50Ms(), have), ms(l.GetP90Ms(), have), ms(l.GetP99Ms(), have))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("scorecard.PrintTable: %w", err)
	}
	f := DefaultParams().Formula()
	if len(cards) > 0 {
		f = cards[0].GetFormula()
	}
	if err := printPurposes(w, cards); err != nil {
		return fmt.Errorf("scorecard.PrintTable: %w", err)
	}
	if err := printDataQuality(w, cards); err != nil {
		return fmt.Errorf("scorecard.PrintTable: %w", err)
	}
	if err := printFeedHealth(w, cards); err != nil {
		return fmt.Errorf("scorecard.PrintTable: %w", err)
	}
	if err := printCompleteness(w, cards); err != nil {
		return fmt.Errorf("scorecard.PrintTable: %w", err)
	}
	if err := printUnequal(w, cards); err != nil {
		return fmt.Errorf("scorecard.PrintTable: %w", err)
	}
	if _, err := fmt.Fprintf(w, "SLA applied: %s; suspect = refused_unjustified + redirected + unanswered + fulfilled after %dx SLA\n%s\n",
		slaSummary(cards), f.GetSuspectSlaMultiple(), formulaLine(f)); err != nil {
		return fmt.Errorf("scorecard.PrintTable: %w", err)
	}
	return nil
}

// printPurposes prints, for each card, its required-response line and then
// each exchange purpose: requests, denied % (unanswered + refused_unjustified)
// and suspect %.
func printPurposes(w io.Writer, cards []*hinscorev1.Scorecard) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\tperiod\tpurpose\trequests\tdenied %\tsuspect %\t")
	for _, c := range cards {
		for _, p := range append([]*hinscorev1.PurposeFigures{c.GetRequiredResponse()}, c.GetPurposes()...) {
			name := p.GetPurpose()
			if name == RequiredResponseLine {
				name = "required response (" + strings.Join(c.GetFormula().GetRequiredPurposes(), ", ") + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t\n", c.GetNetwork(), c.GetPeriod(), name, p.GetRequests(),
				pct(p.GetDenied().GetCount(), p.GetRequests()), pct(p.GetSuspect().GetCount(), p.GetRequests()))
		}
	}
	return tw.Flush()
}

// printDataQuality prints, for each card, the line "messages with
// defects": the network's messages, the share with at least one
// data-quality flag, and each flag's share.
func printDataQuality(w io.Writer, cards []*hinscorev1.Scorecard) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\tperiod\tmessages\twith defects %\tby flag %\t")
	for _, c := range cards {
		dq := c.GetDataQuality()
		var by []string
		for _, f := range dq.GetFlags() {
			by = append(by, f.GetFlag()+" "+pct(f.GetShare().GetCount(), dq.GetMessages()))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t\n", c.GetNetwork(), c.GetPeriod(), dq.GetMessages(),
			pct(dq.GetDefective().GetCount(), dq.GetMessages()), strings.Join(by, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "messages with defects: recorded with a data-quality flag (an odd or missing time, an empty id, an unreadable status) rather than refused")
	return err
}

// formulaLine is the formula version with every parameter, in one line.
func formulaLine(f *hinscorev1.FormulaParams) string {
	return fmt.Sprintf("formula %s: 95%% Wilson interval z=%g, small sample below %d requests; flagged when the suspect lower bound > %g, repeat offender %d of the last %d periods; exception overuse when a code's lower bound > max(%g x peer median, %g); %d chains per flag; required-response purposes %s (%s); unequal treatment when a requester group's rate exceeds the rest's by >= %g with Holm-adjusted p <= %g (groups of >= %d requests); cited exceptions checked by %s",
		f.GetVersion(), f.GetZ(), f.GetMinSample(), f.GetFlagThreshold(), f.GetFlagK(), f.GetFlagN(), f.GetOveruseMultiple(), f.GetOveruseFloor(), f.GetEvidenceLimit(),
		strings.Join(f.GetRequiredPurposes(), ", "), f.GetPurposeVersion(), f.GetUnequalMinDifference(), f.GetUnequalFamilyError(), f.GetUnequalMinGroup(), f.GetExceptionRulesVersion())
}

// slaSummary lists each request kind with the SLA range applied to it
// across the cards, e.g. "patient_query 1m0s, referral 72h0m0s".
func slaSummary(cards []*hinscorev1.Scorecard) string {
	type span struct{ lo, hi uint64 }
	kinds := map[string]span{}
	for _, c := range cards {
		for _, v := range c.GetVolumes() {
			s, seen := kinds[v.GetRequestKind()]
			if !seen || v.GetSlaMinMs() < s.lo {
				s.lo = v.GetSlaMinMs()
			}
			s.hi = max(s.hi, v.GetSlaMaxMs())
			kinds[v.GetRequestKind()] = s
		}
	}
	if len(kinds) == 0 {
		return "none (no requests)"
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		s := kinds[k]
		d := (time.Duration(s.lo) * time.Millisecond).String()
		if s.hi != s.lo {
			d += "-" + (time.Duration(s.hi) * time.Millisecond).String()
		}
		parts = append(parts, k+" "+d)
	}
	return strings.Join(parts, ", ")
}
