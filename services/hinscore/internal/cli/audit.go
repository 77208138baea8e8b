package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/api"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/domain/text"
)

// runAudit lists the AUDIT stream: every access of an investigator to
// original messages, and every refused attempt, from all api replicas,
// oldest first. It reads with an ordered consumer, so it needs a NATS user
// that may read AUDIT (the api's may not).
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", stderr)
	natsURL := fs.String("nats", natsFromEnv(), "NATS with the AUDIT stream ("+bus.EnvNATSURL+"; an administrator's user)")
	network := fs.String("network", "", "only the accesses to this network's chains")
	since := fs.String("since", "", "only entries from this time on: RFC 3339 (2026-12-01T00:00:00Z) or an age (72h)")
	who := fs.String("who", "", "only the entries of this token holder")
	asJSON := fs.Bool("json", false, "the entries as JSON lines, as the api wrote them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	subject := "audit.api.>"
	if *network != "" {
		if err := bus.ValidNetwork(*network); err != nil {
			return fmt.Errorf("%w: --network: %v", errUsage, err)
		}
		subject = bus.AuditSubject(*network)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return fmt.Errorf("%w: --since: %v", errUsage, err)
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	js, closeNATS, err := connectJetStream(*natsURL, "audit")
	if err != nil {
		return err
	}
	defer closeNATS()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "time\twho\trole\taction\toutcome\tnetwork\tchain\tmessages\treason / refusal")
	}
	n := 0
	err = api.ReadAudit(ctx, js, cfg, func(msg jetstream.Msg) error {
		var e api.AuditEntry
		if err := json.Unmarshal(msg.Data(), &e); err != nil {
			return fmt.Errorf("%s holds an entry that is not JSON (%s): %w", bus.StreamAudit, msg.Subject(), err)
		}
		if *who != "" && e.Who != *who {
			return nil
		}
		n++
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", msg.Data())
			return nil
		}
		note := e.Reason
		if e.Refusal != "" {
			note += " / refused: " + e.Refusal
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Who, e.Role, e.Action,
			e.Outcome, e.Network, e.Chain, e.Messages, strings.ReplaceAll(text.Truncate(note, 120), "\n", `\n`))
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit at %s: %w", *natsURL, err)
	}
	if !*asJSON {
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d entries\n", n)
	}
	return nil
}

// parseSince reads an RFC 3339 time or an age before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time or an age such as 72h", s)
	}
	return now.Add(-d), nil
}
