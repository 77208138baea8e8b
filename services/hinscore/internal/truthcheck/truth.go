package truthcheck

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The simulator's truth files this package reads (harness/simulator writes
// them; their columns are read by header name, so columns added at the end
// change nothing here).
const (
	HL7TruthCSV  = "truth.csv"
	XCATruthCSV  = "xca_truth.csv"
	XCATruthJSON = "xca_truth.json"
)

// Feeds of a truth row.
const (
	FeedMLLP = "mllp" // HL7 v2 over MLLP (truth.csv)
	FeedATNA = "atna" // cross-community gateways' audit records
	FeedSOAP = "soap" // cross-community gateways' SOAP copies
)

// Request is what one simulated request must be stored as: one row of a
// truth file, in the terms of the outcomes view.
type Request struct {
	Network string
	Feed    string
	// ID is the request's message id (HL7 MSH-10) or, for a
	// cross-community transaction, the simulator's transaction id.
	ID                                     string
	Kind                                   string
	Requester, Responder                   string
	RequesterCommunity, ResponderCommunity string
	Class, ExceptionCode                   string
	// ErrorCode is the error a cross-community answer carries as a code
	// (RegistryError, XCPD code; "timeout" for none sent).
	ErrorCode string
	// Purpose and PurposeCode are checked when PurposeKnown (the
	// cross-community truth records them).
	Purpose, PurposeCode string
	PurposeKnown         bool
	// Records is the record count the answer states; -1 when the truth
	// does not say.
	Records int64
	// RequestedAt is the request time the outcome must carry; an untimed
	// one may be up to Skew later (the other gateway's record).
	RequestedAt time.Time
	Skew        time.Duration
	// TTAMs and TTFMs are the times to acknowledge and to fulfil; -1 for
	// none (no answer, or a feed that does not show the request's time).
	// TTAMs is -2 when the truth does not say.
	TTAMs, TTFMs int64
	Sides        string
	Untimed      bool
	// Patient is the identifier asked for, a CX ("id^^^authority").
	Patient string
	// Deferred marks an XCPD answer sent in deferred mode.
	Deferred bool
	// SLAMs is the request's SLA when the truth states it per request
	// (0: the truth's SLA of its kind applies).
	SLAMs int64
}

func (r Request) String() string {
	return fmt.Sprintf("%s %s %s (%s→%s at %s, truth %s)", r.Network, r.Kind, r.ID, r.Requester, r.Responder,
		r.RequestedAt.UTC().Format(timeLayout), r.Class)
}

// Truth is every simulated request of a truth directory, and what the
// cross-community comparison needs of the networks' profiles.
type Truth struct {
	Requests []Request
	// gatewayHosts is, per network and home community, the host of its
	// gateway (what an audit names a requester by when only the
	// responding gateway's record was seen).
	gatewayHosts map[string]map[string]string
}

const timeLayout = "2006-01-02T15:04:05.000Z"

// ErrNoTruth is returned when a directory holds neither truth file.
var ErrNoTruth = errors.New("truthcheck: no truth.csv nor xca_truth.csv")

// ReadDir reads truth.csv and xca_truth.csv (with xca_truth.json) from
// dir; either may be absent, not both.
func ReadDir(dir string) (*Truth, error) {
	t := &Truth{gatewayHosts: map[string]map[string]string{}}
	found := 0
	for _, f := range []struct {
		name string
		read func(io.Reader) ([]Request, error)
	}{{HL7TruthCSV, readHL7}, {XCATruthCSV, readXCA}} {
		rows, err := readFile(filepath.Join(dir, f.name), f.read)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found++
		t.Requests = append(t.Requests, rows...)
	}
	if found == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoTruth, dir)
	}
	if err := t.readGateways(filepath.Join(dir, XCATruthJSON)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	t.applyGateways()
	return t, nil
}

func readFile(path string, read func(io.Reader) ([]Request, error)) ([]Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := read(f)
	if err != nil {
		return nil, fmt.Errorf("truthcheck: %s: %w", path, err)
	}
	return rows, nil
}

// readGateways reads the gateways' hosts from the profiles in xca_truth.json.
func (t *Truth) readGateways(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var summary struct {
		Networks []struct {
			Name    string `json:"name"`
			Profile struct {
				Gateways []struct {
					Community string `json:"community"`
					Host      string `json:"host"`
				} `json:"gateways"`
			} `json:"profile"`
		} `json:"networks"`
	}
	if err := json.Unmarshal(b, &summary); err != nil {
		return fmt.Errorf("truthcheck: %s: %w", path, err)
	}
	for _, n := range summary.Networks {
		hosts := map[string]string{}
		for _, g := range n.Profile.Gateways {
			hosts[g.Community] = g.Host
		}
		t.gatewayHosts[n.Name] = hosts
	}
	return nil
}

// table is a CSV file read by header name.
type table struct {
	index map[string]int
	row   []string
	line  int
	err   error
}

func (tb *table) has(col string) bool { _, ok := tb.index[col]; return ok }

// get is a cell of the current row; a missing required column is an error.
func (tb *table) get(col string) string {
	i, ok := tb.index[col]
	if !ok {
		tb.fail("no column %q", col)
		return ""
	}
	return tb.row[i]
}

// opt is a cell of a column the file may not have ("" then).
func (tb *table) opt(col string) string {
	if i, ok := tb.index[col]; ok {
		return tb.row[i]
	}
	return ""
}

func (tb *table) fail(format string, args ...any) {
	if tb.err == nil {
		tb.err = fmt.Errorf("line %d: %s", tb.line, fmt.Sprintf(format, args...))
	}
}

func (tb *table) time(col string) time.Time {
	v := tb.get(col)
	if v == "" {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		tb.fail("%s %q: %v", col, v, err)
	}
	return at
}

// int is a number, or def when the cell is empty.
func (tb *table) int(col string, def int64) int64 {
	v := tb.opt(col)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		tb.fail("%s %q: %v", col, v, err)
	}
	return n
}

func (tb *table) bool(col string) bool {
	v := tb.get(col)
	b, err := strconv.ParseBool(v)
	if err != nil && v != "" {
		tb.fail("%s %q: %v", col, v, err)
	}
	return b
}

// readTable reads a CSV with a header and calls row for each line.
func readTable(r io.Reader, row func(*table) Request) ([]Request, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	tb := &table{index: map[string]int{}, line: 1}
	for i, h := range header {
		tb.index[h] = i
	}
	var out []Request
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		tb.line++
		if err != nil {
			return nil, err
		}
		tb.row = rec
		r := row(tb)
		if tb.err != nil {
			return nil, tb.err
		}
		out = append(out, r)
	}
}
