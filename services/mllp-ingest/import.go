package mllpingest

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/hinscore/hinscore/services/lib/bus/dlq"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/hl7v2"
	"github.com/hinscore/hinscore/services/lib/hl7v2/toevent"
	"github.com/hinscore/hinscore/services/lib/service"
)

// importWindow is how many messages an import has in flight at once.
const importWindow = 512

// ImportStats counts what an import did.
type ImportStats struct {
	Messages int // messages read from the file
	Stored   int // stored in EVENTS (a re-import counts them again: JetStream keeps one copy)
	Rejected int // unreadable, sent to the DLQ with the reason
}

// Importer stores HL7 files (batches, or plain files of messages) exactly
// as the listener stores what arrives over MLLP: one EVENTS message each, bad
// messages to the DLQ, the same Msg-Ids. Event ids depend only on the
// network and the message bytes, so importing a file twice stores it once
// (within the streams' duplicate window; beyond it the same event ids
// make ClickHouse and the linker keep one).
type Importer struct {
	cfg    Config
	js     jetstream.JetStream
	mapper toevent.Mapper
	clock  service.Clock
}

// NewImporter validates cfg and loads its organisation directory.
func NewImporter(cfg Config, js jetstream.JetStream, clock service.Clock) (*Importer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mllpingest.NewImporter: %w", err)
	}
	if js == nil {
		return nil, errors.New("mllpingest.NewImporter: nil JetStream")
	}
	mp, err := cfg.Mapper()
	if err != nil {
		return nil, fmt.Errorf("mllpingest.NewImporter: %w", err)
	}
	if clock == nil {
		clock = service.SystemClock{}
	}
	return &Importer{cfg: cfg, js: js, mapper: mp, clock: clock}, nil
}

// ImportFile is Import of a file's content.
func (im *Importer) ImportFile(ctx context.Context, network, path string, progress func(done, total int)) (ImportStats, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ImportStats{}, fmt.Errorf("mllpingest.ImportFile: %w", err)
	}
	return im.Import(ctx, network, path, data, progress)
}

// Import stores every message of data (see hl7v2.SplitBatches) for
// network. A file whose batch structure or counts are wrong is refused
// whole before anything is stored (a short file is better re-sent
// complete); a message that cannot be parsed or mapped goes to the DLQ and
// the import goes on. progress, when not nil, is called as messages are
// stored. name (the file) is recorded as the remote of its dead letters.
func (im *Importer) Import(ctx context.Context, network, name string, data []byte, progress func(done, total int)) (ImportStats, error) {
	var st ImportStats
	if err := bus.ValidNetwork(network); err != nil {
		return st, fmt.Errorf("mllpingest.Import %s: %w", name, err)
	}
	f, err := hl7v2.SplitBatches(data)
	if err != nil {
		return st, fmt.Errorf("mllpingest.Import %s: %w", name, err)
	}
	msgs := f.Messages()
	st.Messages = len(msgs)
	remote := "import:" + name
	stall := defaultPublishTimeout
	for lo := 0; lo < len(msgs); lo += importWindow {
		chunk := msgs[lo:min(len(msgs), lo+importWindow)]
		futs := make([]jetstream.PubAckFuture, len(chunk))
		for i, raw := range chunk {
			_, ev, err := im.mapper.MapBytes(network, raw, im.clock.Now())
			if err != nil {
				if err := dlq.Publish(ctx, im.js, dlq.DeadLetter{Stage: stageMLLPIngest, Network: network, Format: formatHL7v2,
					Remote: remote, Reason: fmt.Sprintf("%s: message %d: %v", reasonParse, lo+i+1, err), Data: raw}); err != nil {
					return st, fmt.Errorf("mllpingest.Import %s: message %d: %w", name, lo+i+1, err)
				}
				st.Rejected++
				continue
			}
			ev.Feed = ingest.ChannelImport + ":" + formatHL7v2
			bus.Route(ev, im.cfg.PartitionCount)
			if futs[i], err = ingest.Store(im.js, im.cfg.RawKeys, ev, raw, stall); err != nil {
				return st, fmt.Errorf("mllpingest.Import %s: message %d: %w", name, lo+i+1, err)
			}
		}
		for i, fut := range futs {
			if fut == nil {
				continue
			}
			if _, err := bus.AwaitAck(ctx, fut, defaultPublishTimeout); err != nil {
				return st, fmt.Errorf("mllpingest.Import %s: message %d: EVENTS: %w", name, lo+i+1, err)
			}
			st.Stored++
		}
		if progress != nil {
			progress(lo+len(chunk), len(msgs))
		}
	}
	return st, nil
}

// ImportFile imports one file with a new Importer; see Importer.Import.
func ImportFile(ctx context.Context, js jetstream.JetStream, cfg Config, network, path string, progress func(done, total int)) (ImportStats, error) {
	im, err := NewImporter(cfg, js, nil)
	if err != nil {
		return ImportStats{}, err
	}
	return im.ImportFile(ctx, network, path, progress)
}
