package fhiringest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/dlq"

	"github.com/hinscore/hinscore/services/lib/domain/ids"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	hinscorev1 "github.com/hinscore/hinscore/proto/gen/hinscore/v1"
	"github.com/hinscore/hinscore/services/fhir-ingest/fhirmap"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

// NDJSON lines are stored in RAW in chunks (one RAW message holds up to
// chunkLines lines or chunkBytes bytes, header Hin-Lines "first-last"), so a
// bulk feed costs one publish per event, not two. The chunking depends only
// on the input, so a re-import makes the same RAW Msg-Ids.
const (
	chunkLines = 2048
	chunkBytes = 1 << 20
	// maxPendingAcks bounds the event PubAcks awaited at once.
	maxPendingAcks = 8192
	// MaxListedLines bounds the bad lines whose text an import keeps
	// (ImportStats.Errors) and a reply lists: the rest are counted only,
	// so a file of a million bad lines costs no more memory than one of a
	// hundred.
	MaxListedLines = 100
)

// ImportStats says what an NDJSON import stored.
type ImportStats struct {
	Lines      int // non-blank lines read
	Resources  int // lines mapped and stored
	Events     int // events published and acknowledged
	Duplicates int // events JetStream already held (a re-import)
	Skipped    int // valid resources that are not exchange events (Patient ...)
	Refused    int // lines that could not be stored, each in the DLQ
	// Flags counts the events published with each data-quality flag
	// (lib/domain/quality); nil when none had one.
	Flags map[string]int
	// Errors are the first MaxListedLines of the skipped and refused
	// lines, with their text; the others are only counted.
	Errors []LineError
}

// Unlisted is how many skipped or refused lines Errors does not list.
func (st ImportStats) Unlisted() int { return st.Skipped + st.Refused - len(st.Errors) }

// note keeps le's text while fewer than MaxListedLines are kept.
func (st *ImportStats) note(le LineError) {
	if len(st.Errors) < MaxListedLines {
		st.Errors = append(st.Errors, le)
	}
}

// LineError is a line that could not be stored; its bytes went to the DLQ.
type LineError struct {
	Line      int
	Path      string // FHIRPath-like element, "" when the line is not JSON
	IssueCode string
	Msg       string
	// NotExchange marks a valid resource that is not an exchange event: it
	// is skipped, not dead-lettered.
	NotExchange bool
}

func (e LineError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Msg)
}

// ImportNDJSON stores the NDJSON resources of r for network through the
// same path as the HTTP ingest (RAW, then EVENTS; deterministic Msg-Ids, so
// a re-import is deduplicated). Bad lines go to the DLQ and are listed in
// the stats; the error is for failures to store (the import may be re-run).
func ImportNDJSON(ctx context.Context, js jetstream.JetStream, cfg Config, network string, r io.Reader) (ImportStats, error) {
	if err := bus.ValidNetwork(network); err != nil {
		return ImportStats{}, fmt.Errorf("fhiringest.ImportNDJSON: %w", err)
	}
	if cfg.PartitionCount < 1 || len(cfg.PatientKey) < 16 || cfg.PatientKeyID == "" || cfg.MaxBodyBytes < 1 {
		return ImportStats{}, fmt.Errorf("fhiringest.ImportNDJSON: config needs Partitions, PatientKey (16+ bytes), PatientKeyID and MaxBodyBytes")
	}
	im := &importer{
		pub:     &publisher{js: js, keys: cfg.RawKeys, partitions: cfg.PartitionCount, timeout: defaultPublishTimeout},
		mapper:  cfg.mapper(network, fhirmap.NewMapper(cfg.PatientKey, cfg.PatientKeyID)),
		clock:   service.SystemClock{},
		log:     zerolog.Nop(),
		network: network,
		maxLine: int(cfg.MaxBodyBytes),
	}
	st, err := im.run(ctx, r)
	if err != nil {
		return st, fmt.Errorf("fhiringest.ImportNDJSON: %w", err)
	}
	return st, nil
}

// importer reads, maps and stores NDJSON.
type importer struct {
	pub     *publisher
	mapper  fhirmap.Mapper
	clock   service.Clock
	log     zerolog.Logger
	network string
	remote  string
	maxLine int

	chunk      []byte
	firstLine  int
	lastLine   int
	chunkCount int
	pending    []*hinscorev1.ExchangeEvent
	futs       []jetstream.PubAckFuture
	stats      ImportStats
}

func (im *importer) run(ctx context.Context, r io.Reader) (ImportStats, error) {
	lr := fhirmap.NewLineReader(r, im.maxLine)
	for {
		line, data, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, fhirmap.ErrLineTooLong) {
			im.stats.Lines++
			le := LineError{Line: line, IssueCode: "too-costly", Msg: fmt.Sprintf("line over %d bytes", im.maxLine)}
			if err := im.deadLetter(ctx, le, nil); err != nil {
				return im.stats, err
			}
			continue
		}
		if err != nil {
			return im.stats, im.readError(err)
		}
		im.stats.Lines++
		res, err := im.mapper.Map(fhirmap.Input{Network: im.network, Body: data, Ingest: im.clock.Now()})
		if err != nil {
			le := LineError{Line: line, IssueCode: "invalid", Msg: err.Error()}
			var fe *fhirmap.Error
			if errors.As(err, &fe) {
				le.Path, le.IssueCode, le.Msg = fe.Path, fe.IssueCode, fe.Msg
			}
			if errors.Is(err, fhirmap.ErrNotExchange) {
				le.NotExchange = true
				im.stats.Skipped++
				im.stats.note(le)
				continue
			}
			if err := im.deadLetter(ctx, le, data); err != nil {
				return im.stats, err
			}
			continue
		}
		if im.chunkCount == 0 {
			im.firstLine = line
		}
		im.lastLine = line
		im.chunk = append(im.chunk, data...)
		im.chunk = append(im.chunk, '\n')
		im.chunkCount++
		im.pending = append(im.pending, res.Events...)
		if im.chunkCount >= chunkLines || len(im.chunk) >= chunkBytes {
			if err := im.flush(ctx); err != nil {
				return im.stats, err
			}
		}
	}
	if err := im.flush(ctx); err != nil {
		return im.stats, err
	}
	if err := im.awaitAcks(ctx, 0); err != nil {
		return im.stats, err
	}
	return im.stats, nil
}

// readError keeps a body-size overrun recognisable.
func (im *importer) readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: over %d bytes", errTooLarge, mbe.Limit)
	}
	return err
}

func (im *importer) deadLetter(ctx context.Context, le LineError, data []byte) error {
	im.stats.Refused++
	im.stats.note(le)
	ctx, cancel := context.WithTimeout(ctx, im.pub.timeout)
	defer cancel()
	err := dlq.Publish(ctx, im.pub.js, dlq.DeadLetter{
		Stage: stageFHIRIngest, Network: im.network, Format: formatFHIR, Remote: im.remote,
		Reason: "ndjson " + le.Error(), Data: data,
	})
	if err != nil {
		return fmt.Errorf("%w: DLQ: %v", ErrNotStored, err)
	}
	return nil
}

// flush stores the chunk in RAW and starts its events' publishes.
func (im *importer) flush(ctx context.Context) error {
	if im.chunkCount == 0 {
		return nil
	}
	msg := rawMsg(im.network, im.remote, formatFHIR, im.chunk)
	msg.Header.Set(HeaderLines, strconv.Itoa(im.firstLine)+"-"+strconv.Itoa(im.lastLine))
	seq, _, err := im.pub.publishRaw(ctx, msg, "raw:"+ids.Event(im.network, im.chunk).String())
	if err != nil {
		return err
	}
	for _, ev := range im.pending {
		ev.Feed = feedOf(formatFHIR, im.remote)
		fut, err := im.pub.publishEvent(ev, nil, msg.Subject, seq)
		if err != nil {
			return err
		}
		im.futs = append(im.futs, fut)
		im.stats.Flags = countFlags(im.stats.Flags, []*hinscorev1.ExchangeEvent{ev})
	}
	im.stats.Resources += im.chunkCount
	// The client copied the chunk into its buffer before the PubAck: reuse it.
	im.chunk, im.chunkCount, im.pending = im.chunk[:0], 0, im.pending[:0]
	return im.awaitAcks(ctx, maxPendingAcks)
}

// awaitAcks waits for PubAcks until at most keep are outstanding.
func (im *importer) awaitAcks(ctx context.Context, keep int) error {
	if len(im.futs) <= keep {
		return nil
	}
	n := len(im.futs) - keep/2
	if keep == 0 {
		n = len(im.futs)
	}
	for _, f := range im.futs[:n] {
		ack, err := im.pub.await(ctx, f)
		if err != nil {
			return fmt.Errorf("%w: EVENTS: %v", ErrNotStored, err)
		}
		im.stats.Events++
		if ack.Duplicate {
			im.stats.Duplicates++
		}
	}
	im.futs = append(im.futs[:0], im.futs[n:]...)
	return nil
}

// serveNDJSON answers a bulk POST: 200 with an OperationOutcome listing the
// bad lines by number once every good line is stored; 413 or 503 when the
// feed stopped part way (what was stored stays: re-sending is deduplicated).
func (s *Server) serveNDJSON(w http.ResponseWriter, r *http.Request, network string, start time.Time, body io.Reader) {
	im := &importer{
		pub: s.pub, mapper: s.mapperOf(network), clock: s.clock, log: s.log,
		network: network, remote: r.RemoteAddr, maxLine: int(s.cfg.MaxBodyBytes),
	}
	st, err := im.run(r.Context(), body)
	s.m.received.WithLabelValues(network).Add(float64(st.Lines))
	s.m.accepted.WithLabelValues(network).Add(float64(st.Resources))
	s.m.events.WithLabelValues(network).Add(float64(st.Events))
	s.m.flagged(network, st.Flags)
	s.m.duplicate.WithLabelValues(network).Add(float64(st.Duplicates))
	issues := []OutcomeIssue{infoIssue(fmt.Sprintf("%d line(s): %d resource(s) stored, %d event(s), %d duplicate event(s), %d skipped (not exchange events), %d refused",
		st.Lines, st.Resources, st.Events, st.Duplicates, st.Skipped, st.Refused))}
	s.m.rejected.WithLabelValues(network, reasonNotExchange).Add(float64(st.Skipped))
	s.m.rejected.WithLabelValues(network, reasonInvalid).Add(float64(st.Refused))
	for _, le := range st.Errors {
		is := OutcomeIssue{Severity: "error", Code: le.IssueCode, Diagnostics: le.Error(), Location: []string{"line " + strconv.Itoa(le.Line)}}
		if le.NotExchange {
			is.Severity = "warning"
		}
		if le.Path != "" {
			is.Expression = []string{le.Path}
		}
		issues = append(issues, is)
	}
	if n := st.Unlisted(); n > 0 {
		issues = append(issues, OutcomeIssue{Severity: "warning", Code: "too-costly", Diagnostics: fmt.Sprintf("%d more line(s) not listed", n)})
	}
	switch {
	case errors.Is(err, errTooLarge):
		s.m.rejected.WithLabelValues(network, reasonTooLarge).Inc()
		issues = append(issues, errorIssue("too-costly", err.Error()+": the lines before were stored", ""))
		s.reply(w, network, start, http.StatusRequestEntityTooLarge, outcomeOf(issues...))
	case err != nil:
		s.m.rejected.WithLabelValues(network, reasonPublish).Inc()
		s.log.Warn().Err(err).Str("network", network).Msg("NDJSON import stopped: replying 503")
		issues = append(issues, OutcomeIssue{Severity: "error", Code: "transient", Diagnostics: "stopped: " + err.Error() + "; send the file again (stored lines are deduplicated)"})
		s.reply(w, network, start, http.StatusServiceUnavailable, outcomeOf(issues...))
	default:
		s.reply(w, network, start, http.StatusOK, outcomeOf(issues...))
	}
}
