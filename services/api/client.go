package api

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hinscore/hinscore/services/lib/domain/purpose"
	"github.com/hinscore/hinscore/services/lib/service"
)

// The client's variables, by name (ClientConfig declares them).
const (
	EnvClientURL       = "HINSCORE_API_URL"
	EnvClientToken     = "HINSCORE_API_TOKEN"
	EnvClientTokenFile = "HINSCORE_API_TOKEN_FILE"
)

// ClientConfig is what the command-line client reads from the
// environment; its flags override it.
type ClientConfig struct {
	URL       string `env:"HINSCORE_API_URL" default:"http://127.0.0.1:8090" help:"(hinscore chain, journey, offenders) the API's base URL; --api overrides"`
	Token     string `env:"HINSCORE_API_TOKEN" help:"(hinscore chain, journey, offenders) the API token; --token-file overrides"`
	TokenFile string `env:"HINSCORE_API_TOKEN_FILE" help:"(hinscore chain, journey, offenders) a file holding the API token (surrounding white space ignored), read instead of HINSCORE_API_TOKEN; --token-file overrides"`
}

// clientToken is the token the client sends: from --token-file, else
// --token (argv, which other users of the machine can read in the process
// list and the shell keeps in its history: kept for old scripts, with a
// warning), else the file of HINSCORE_API_TOKEN_FILE, else
// HINSCORE_API_TOKEN.
func clientToken(cc ClientConfig, flagFile, flagToken string, stderr io.Writer, command string) (string, error) {
	if flagFile != "" && flagToken != "" {
		return "", fmt.Errorf("%w: give --token-file or --token, not both", ErrUsage)
	}
	file := flagFile
	if flagToken != "" {
		fmt.Fprintf(stderr, "hinscore %s: warning: --token on the command line is visible to other users of this machine (ps, shell history): use $%s or --token-file\n", command, EnvClientToken)
		return flagToken, nil
	}
	if file == "" && cc.TokenFile != "" {
		file = cc.TokenFile
	}
	if file == "" {
		if cc.Token == "" {
			return "", fmt.Errorf("%w: no token: set %s or give --token-file", ErrUsage, EnvClientToken)
		}
		return cc.Token, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		// The error names the file, never its content.
		return "", fmt.Errorf("%w: token file: %v", ErrUsage, err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return "", fmt.Errorf("%w: token file %s: want the token alone on one line", ErrUsage, file)
	}
	return token, nil
}

// ErrUsage is wrapped by command-line mistakes (exit status 2).
var ErrUsage = errors.New("usage")

// parseInterleaved parses flags that may come before or after the
// arguments (hinscore chain ID --json): the flag package stops at the
// first argument, so parsing goes on after each one. It returns the
// arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

// RunClientCLI runs `hinscore chain ID`, `hinscore journey TOKEN` or
// `hinscore offenders` against the HTTP API: readable tables, or the API's
// JSON with --json.
func RunClientCLI(ctx context.Context, command string, args []string, stdout, stderr io.Writer) error {
	var cc ClientConfig
	if err := service.Load(service.NewEnv(), &cc); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api", cc.URL, "API base URL ($"+EnvClientURL+")")
	tokenFile := fs.String("token-file", "", "file holding the API token ($"+EnvClientTokenFile+"; else $"+EnvClientToken+")")
	tokenArg := fs.String("token", "", "the API token itself (deprecated: visible in the process list; use $"+EnvClientToken+" or --token-file)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	granularity := fs.String("granularity", "week", "offenders: day, week or month")
	purposeName := fs.String("purpose", "", "journey: only the requests of this exchange purpose (treatment, individual_access, ...); offenders: ranked on that purpose's line, or required_response")
	var usage string
	switch command {
	case "chain":
		usage = "hinscore chain [--api URL] [--token-file F] [--json] CHAIN_ID"
	case "journey":
		usage = "hinscore journey [--api URL] [--token-file F] [--json] [--purpose P] PATIENT_TOKEN"
	case "offenders":
		usage = "hinscore offenders [--api URL] [--token-file F] [--json] [--granularity week] [--purpose P]"
	default:
		return fmt.Errorf("%w: unknown command %q (chain, journey, offenders)", ErrUsage, command)
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	operands, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	want := 1
	if command == "offenders" {
		want = 0
	}
	if len(operands) != want {
		return fmt.Errorf("%w: %s", ErrUsage, usage)
	}
	token, err := clientToken(cc, *tokenFile, *tokenArg, stderr, command)
	if err != nil {
		return err
	}
	base, err := url.Parse(*apiURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("%w: --api %q: want http(s)://host:port", ErrUsage, *apiURL)
	}
	if *purposeName != "" && command == "chain" {
		return fmt.Errorf("%w: --purpose is for journey and offenders: %s", ErrUsage, usage)
	}
	path, q, err := clientRequest(command, operands, *granularity, *purposeName)
	if err != nil {
		return err
	}
	// Errors name the request, not the command: the caller prints them
	// after "hinscore <command>:".
	body, err := get(ctx, base, path, q, token)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	return printReply(stdout, command, path, body)
}

// clientRequest is the API path and query a client command asks, its
// operand checked first so that a bad one is a usage error, not a 400.
func clientRequest(command string, operands []string, granularity, purposeName string) (string, url.Values, error) {
	q := url.Values{}
	switch command {
	case "chain":
		if _, err := parseChainID(operands[0]); err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		return "/v1/chains/" + operands[0], q, nil
	case "journey":
		if _, err := parsePatientToken(operands[0]); err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		if purposeName != "" {
			if _, err := parsePurpose(purposeName); err != nil {
				return "", nil, fmt.Errorf("%w: %v", ErrUsage, err)
			}
			q.Set("purpose", purposeName)
		}
		return "/v1/patients/" + operands[0] + "/journey", q, nil
	default:
		if _, err := parseGranularity(granularity); err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		q.Set("granularity", granularity)
		if purposeName != "" {
			if _, err := purpose.Parse(purposeName); err != nil && purposeName != RequiredResponseLine {
				return "", nil, fmt.Errorf("%w: --purpose: want %s or one of %s", ErrUsage, RequiredResponseLine, purposeNames())
			}
			q.Set("purpose", purposeName)
		}
		return "/v1/offenders", q, nil
	}
}

// printReply prints the API's answer to a client command as a table.
func printReply(stdout io.Writer, command, path string, body []byte) error {
	switch command {
	case "chain":
		var v ChainView
		if err := json.Unmarshal(body, &v); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		return printChain(stdout, v)
	case "journey":
		var j Journey
		if err := json.Unmarshal(body, &j); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		return printJourney(stdout, j)
	default:
		var o Offenders
		if err := json.Unmarshal(body, &o); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		return printOffenders(stdout, o)
	}
}

// get fetches base+path; a status other than 200 is an error naming the
// path, the status and the API's message.
func get(ctx context.Context, base *url.URL, path string, q url.Values, token string) ([]byte, error) {
	u := base.JoinPath(path)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg += ": " + e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (check $" + EnvClientToken + " or --token-file)"
		}
		return nil, fmt.Errorf("GET %s: %s", path, msg)
	}
	return body, nil
}

func printChain(w io.Writer, v ChainView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "chain\t%s (version %d)\n", v.ID, v.Version)
	fmt.Fprintf(tw, "network\t%s\n", v.Network)
	fmt.Fprintf(tw, "request\t%s %s: %s -> %s\n", v.RequestKind, v.RequestID, v.RequesterOrg, v.ResponderOrg)
	fmt.Fprintf(tw, "outcome\t%s\n", withDetail(v.Class, v.ExceptionCode, v.Suspect, "SUSPECT"))
	fmt.Fprintf(tw, "purpose\t%s\n", withDetail(v.Purpose, v.PurposeCode, v.RequiredResponse, "REQUIRED RESPONSE"))
	if cc := v.CrossCommunity; cc != nil {
		fmt.Fprintf(tw, "communities\t%s -> %s\n", withDetail(dash(cc.RequesterCommunity), cc.RequesterName, false, ""),
			withDetail(dash(cc.ResponderCommunity), cc.ResponderName, false, ""))
		fmt.Fprintf(tw, "records seen\t%s\n", cc.SidesSeen)
	}
	fmt.Fprintf(tw, "why\t%s [rule %s, mapping %s]\n", v.Why.Explanation, v.Why.RuleVersion, v.Why.MappingVersion)
	fmt.Fprintf(tw, "requested\t%s\n", v.Times.RequestedAt)
	if v.Untimed {
		fmt.Fprintf(tw, "untimed\t%s\n", v.Why.Timing)
	}
	fmt.Fprintf(tw, "sla\t%s + grace %s, deadline %s\n", v.SLA.Text, time.Duration(v.GraceMs)*time.Millisecond, dash(v.SLA.Deadline))
	if v.TTFMs != nil {
		fmt.Fprintf(tw, "time to fulfil\t%s\n", time.Duration(*v.TTFMs)*time.Millisecond)
	}
	if v.PatientToken != "" {
		fmt.Fprintf(tw, "patient\t%s\n", v.PatientToken)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "OFFSET\tROLE\tSIDE\tTYPE\tMESSAGE ID\tSTATUS\tACK\tREASON")
	for _, st := range v.Steps {
		reason := stepReason(st)
		fmt.Fprintf(tw, "+%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", time.Duration(st.EventTimeMs-v.RequestedAtMs)*time.Millisecond,
			st.Role, dash(st.Side), st.MessageType, st.MessageID, dash(st.Status), dash(st.AckCode), dash(reason))
	}
	return tw.Flush()
}

// stepReason is a step's reason as codes: the exception cited or redirect
// kind, then the reason codes that add to it. The sender's words are only
// in the original message (the raw view).
func stepReason(st Step) string {
	parts := []string{}
	if st.ExceptionCode != "" {
		parts = append(parts, st.ExceptionCode)
	}
	for _, c := range st.ReasonCodes {
		if st.ExceptionCode == "" || (c != st.ExceptionCode && !strings.HasSuffix(c, "|"+st.ExceptionCode)) {
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, " ")
}

func printJourney(w io.Writer, j Journey) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	verdict := "no runaround detected"
	if j.Runaround {
		verdict = "RUNAROUND DETECTED"
	}
	of := ""
	if j.Purpose != "" {
		of = " of purpose " + j.Purpose
	}
	fmt.Fprintf(tw, "patient %s: %d requests%s, %s (%s)\n", j.Token, len(j.Requests), of, verdict, j.RuleVersion)
	for _, e := range j.Episodes {
		if !e.Runaround {
			continue
		}
		fmt.Fprintf(tw, "  %s .. %s: %s: %s\n", msTime(e.FromMs), msTime(e.ToMs), e.Kind, e.Why)
		if e.Kind == KindFoundNoDocuments {
			for _, st := range e.Steps {
				fmt.Fprintf(tw, "    +%s %s %s %s\n", time.Duration(st.RequestedAtMs-e.FromMs)*time.Millisecond, st.RequestKind, st.Class, st.Chain)
			}
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "REQUESTED\tNETWORK\tRESPONDER\tKIND\tPURPOSE\tOUTCOME\tCHAIN")
	for _, o := range j.Requests {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", msTime(o.RequestedAtMs), o.Network, o.ResponderOrg, o.RequestKind, o.Purpose,
			withDetail(o.Class, o.ExceptionCode, false, ""), o.ID)
	}
	return tw.Flush()
}

func printOffenders(w io.Writer, o Offenders) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	of := ""
	if o.Query.Purpose != "" {
		of = ", purpose " + o.Query.Purpose
	}
	fmt.Fprintf(tw, "%s: %d of the last %d %ss (%s), threshold %.1f %%, min %d requests%s\n\n",
		o.FormulaVersion, o.Query.K, o.Query.N, o.Query.Granularity, strings.Join(o.Periods, ", "), 100*o.Query.Threshold, o.Query.MinRequests, of)
	fmt.Fprintln(tw, "NETWORK\tPRIORITY\tFLAGGED\tREPEAT\tPERIOD\tREQUESTS\tSUSPECT\tLOWER BOUND\tCHAINS")
	for _, n := range o.Offenders {
		repeat := "no"
		if n.RepeatOffender {
			repeat = "YES"
		}
		ids := make([]string, len(n.Chains))
		for i, c := range n.Chains {
			ids[i] = c.ID
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%d/%d\t%s\t%s\t%d\t%.1f %%\t%.1f %%\t%s\n", n.Network, n.Priority, n.Flagged, len(n.Periods), repeat,
			n.LatestScorecard.Period, n.LatestScorecard.Requests, 100*n.LatestScorecard.SuspectRate, 100*n.LatestScorecard.SuspectCILow, dash(strings.Join(ids, " ")))
	}
	return tw.Flush()
}

// withDetail is a value as the tables print it: its detail in
// parentheses, then the flag when flagged.
func withDetail(value, detail string, flagged bool, flag string) string {
	if detail != "" {
		value += " (" + detail + ")"
	}
	if flagged {
		value += "  " + flag
	}
	return value
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
