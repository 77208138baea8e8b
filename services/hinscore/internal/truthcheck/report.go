package truthcheck

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// classOrder is DOMAIN.md's order of the outcome classes; a class the
// comparison meets that is not here comes after them, by name.
var classOrder = []string{
	"fulfilled", "fulfilled_late", "partial", "not_found", "refused_exception", "refused_unjustified", "redirected",
	"error_transient", "error_permanent", "cancelled", "unanswered", "orphan", NoClass,
}

func sortClasses(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b string) int {
		ia, ib := slices.Index(classOrder, a), slices.Index(classOrder, b)
		if ia < 0 {
			ia = len(classOrder)
		}
		if ib < 0 {
			ib = len(classOrder)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	return out
}

// Networks returns the networks of the comparison, sorted.
func (r *Report) Networks() []string {
	out := make([]string, 0, len(r.Confusion))
	for n := range r.Confusion {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ClassCounts are one network's and class's figures: requests of the class
// in the truth, outcomes of it in the store, and requests of it in both.
type ClassCounts struct {
	Truth, Stored, Both int
}

// Exact reports whether truth and store agree on every request of the class.
func (c ClassCounts) Exact() bool { return c.Truth == c.Stored && c.Both == c.Truth }

// Classes returns, for a network, each class's counts (classes that occur
// on either side, NoClass aside).
func (r *Report) Classes(network string) ([]string, map[string]ClassCounts) {
	counts := map[string]ClassCounts{}
	set := map[string]bool{}
	for truth, row := range r.Confusion[network] {
		for stored, n := range row {
			t := counts[truth]
			t.Truth += n
			counts[truth] = t
			s := counts[stored]
			s.Stored += n
			if stored == truth {
				s.Both += n
			}
			counts[stored] = s
			set[truth], set[stored] = true, true
		}
	}
	delete(set, NoClass)
	return sortClasses(set), counts
}

// PrintClasses prints, per network and class, the requests of the truth,
// the outcomes stored and the requests both give that class: exact when
// the three are equal.
func (r *Report) PrintClasses(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\tclass\ttruth\tstored\tin both\texact\t")
	for _, n := range r.Networks() {
		classes, counts := r.Classes(n)
		for _, c := range classes {
			k := counts[c]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t\n", n, c, k.Truth, k.Stored, k.Both, yesNo(k.Exact()))
		}
	}
	return tw.Flush()
}

// PrintConfusion prints each network's confusion matrix: a row per class
// of the truth, a column per class stored; NoClass is a request without
// an outcome (column) or an outcome without a request (row).
func (r *Report) PrintConfusion(w io.Writer) error {
	for _, n := range r.Networks() {
		rows, cols := map[string]bool{}, map[string]bool{}
		for truth, row := range r.Confusion[n] {
			rows[truth] = true
			for stored := range row {
				cols[stored] = true
			}
		}
		columns := sortClasses(cols)
		fmt.Fprintf(w, "%s: truth (rows) by stored (columns)\n", n)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "\t%s\t\n", strings.Join(columns, "\t"))
		for _, truth := range sortClasses(rows) {
			cells := make([]string, len(columns))
			for i, c := range columns {
				cells[i] = fmt.Sprint(r.Confusion[n][truth][c])
			}
			fmt.Fprintf(tw, "%s\t%s\t\n", truth, strings.Join(cells, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

// PrintDifferences prints a summary line and every difference.
func (r *Report) PrintDifferences(w io.Writer) error {
	byField := map[string]int{}
	for _, d := range r.Differences {
		byField[d.Field]++
	}
	fields := make([]string, 0, len(byField))
	for f, n := range byField {
		fields = append(fields, fmt.Sprintf("%s %d", f, n))
	}
	slices.Sort(fields)
	if _, err := fmt.Fprintf(w, "%d requests in the truth, %d outcomes stored: %d differences", r.Requests, r.Outcomes, len(r.Differences)); err != nil {
		return err
	}
	if len(fields) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(fields, ", "))
	}
	fmt.Fprintln(w)
	for _, d := range r.Differences {
		if _, err := fmt.Fprintln(w, d); err != nil {
			return err
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
