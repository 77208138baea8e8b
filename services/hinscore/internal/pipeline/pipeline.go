// Package pipeline composes every hinscore stage in one process: an
// embedded NATS JetStream (or an external one), the MLLP ingest, the linker
// and the ClickHouse writer. `hinscore up`, `hinscore demo` and the
// end-to-end tests run the same code the standalone services run.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/hinscore/hinscore/services/api"
	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	"github.com/hinscore/hinscore/services/chwriter"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/seal"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
	"github.com/hinscore/hinscore/services/scorecard"
)

// Options configure a composed pipeline.
type Options struct {
	// DataDir holds the embedded JetStream store. Ignored when NATSURL is set.
	DataDir string
	// NATSURL connects to an external NATS instead of starting one.
	NATSURL string
	// NATSAddr is the embedded server's client address ("": a free port on 127.0.0.1).
	NATSAddr string
	// ClickHouse is where events and outcomes are written; the database is
	// created and migrated when missing.
	ClickHouse chstore.DSN
	// AdminAddr serves /metrics, /healthz and /readyz for the whole process ("" disables).
	AdminAddr string
	// Streams are the streams' settings; their partition count is Shared's.
	Streams bus.StreamOptions
	// Shared are the settings several components read, set once for all:
	// Start gives them to each component whatever its configuration holds.
	Shared Shared
	Ingest mllpingest.Config
	// ATNA, when set, also runs the audit-record listener.
	ATNA *atnaingest.Config
	// FHIR, when set, also runs the FHIR ingest.
	FHIR   *fhiringest.Config
	Linker linker.Config
	Writer chwriter.Config
	// API, when set, serves investigators, operators and analysts.
	API *api.Config
	// Scorecard, when set, rebuilds the scorecard files periodically.
	Scorecard *scorecard.ServiceConfig
	Log       zerolog.Logger
	Clock     service.Clock
}

// Shared are the settings of the pipeline that several components read:
// the partition count (the ingests and the linker, recorded on EVENTS),
// the patient key (both ingests), the raw keys (both ingests and the api).
type Shared struct {
	bus.Partitioning
	service.PatientTokens
	seal.Keys
}

// DefaultShared are the shared settings' defaults.
func DefaultShared() Shared {
	var s Shared
	service.Defaults(&s)
	return s
}

// share gives every component's configuration the shared settings.
func (o *Options) share() {
	s := o.Shared
	o.Streams.Partitions = s.EventPartitions()
	o.Ingest.Partitioning, o.Ingest.PatientTokens, o.Ingest.Keys = s.Partitioning, s.PatientTokens, s.Keys
	o.Linker.Partitioning = s.Partitioning
	if o.ATNA != nil {
		atna := *o.ATNA
		atna.Partitioning, atna.PatientTokens, atna.Keys = s.Partitioning, s.PatientTokens, s.Keys
		o.ATNA = &atna
	}
	if o.FHIR != nil {
		fhir := *o.FHIR
		fhir.Partitioning, fhir.PatientTokens, fhir.Keys = s.Partitioning, s.PatientTokens, s.Keys
		o.FHIR = &fhir
	}
	if o.API != nil {
		a := *o.API
		a.Keys = s.Keys
		o.API = &a
	}
}

// Pipeline is a running composition. Shutdown stops it in flow order, so
// that what the ingest accepted is linked and written before the end.
type Pipeline struct {
	opts     Options
	embedded *natsembed.Embedded
	nc       *nats.Conn
	js       jetstream.JetStream
	conn     driver.Conn
	dsn      chstore.DSN
	admin    *service.Admin
	ingest   *mllpingest.Server
	atna     *atnaingest.Server
	fhir     *fhiringest.Server
	linker   *linker.Linker
	writer   *chwriter.Writer
	cards    *scorecard.Service
	api      *api.Server
	started  []service.Component
}

// Start brings every stage up; on error it stops what it started.
func Start(ctx context.Context, opts Options) (p *Pipeline, err error) {
	if opts.Clock == nil {
		opts.Clock = service.SystemClock{}
	}
	opts.share()
	p = &Pipeline{opts: opts}
	// Each error return sets p to nil: stop what started through a copy.
	started := p
	defer func() {
		if err != nil {
			_ = started.Shutdown(context.WithoutCancel(ctx))
			p = nil
		}
	}()
	url := opts.NATSURL
	if url == "" {
		host, port, err := natsembed.SplitAddr(opts.NATSAddr)
		if err != nil {
			return nil, fmt.Errorf("pipeline.Start: NATS address: %w", err)
		}
		if p.embedded, err = natsembed.Start(opts.DataDir, host, port); err != nil {
			return nil, fmt.Errorf("pipeline.Start: %w", err)
		}
		url = p.embedded.URL()
		opts.Log.Info().Str("url", url).Str("store", opts.DataDir).Msg("embedded NATS JetStream started")
	}
	if p.nc, err = bus.Connect(url, "hinscore"); err != nil {
		return nil, fmt.Errorf("pipeline.Start: %w", err)
	}
	if p.js, err = jetstream.New(p.nc); err != nil {
		return nil, fmt.Errorf("pipeline.Start: jetstream: %w", err)
	}
	if err = bus.EnsureStreams(ctx, p.js, opts.Streams); err != nil {
		return nil, fmt.Errorf("pipeline.Start: %w", err)
	}
	if p.conn, err = chstore.OpenDSN(ctx, opts.ClickHouse); err != nil {
		return nil, fmt.Errorf("pipeline.Start: %w", err)
	}
	p.dsn = opts.ClickHouse
	opts.Log.Info().Str("clickhouse", p.dsn.String()).Msg("ClickHouse schema migrated")

	p.admin = service.NewAdmin(opts.AdminAddr, opts.Log.With().Str("component", "admin").Logger())
	comps, err := p.build()
	if err != nil {
		return nil, fmt.Errorf("pipeline.Start: %w", err)
	}
	p.admin.AddReadiness("clickhouse", func(ctx context.Context) error { return p.conn.Ping(ctx) })
	p.admin.AddReadiness("nats", func(context.Context) error {
		if !p.nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})

	// Downstream first, so nothing the ingest accepts waits for a consumer.
	for _, c := range append([]service.Component{p.admin}, comps...) {
		if err = c.Start(ctx); err != nil {
			return nil, fmt.Errorf("pipeline.Start %T: %w", c, err)
		}
		p.started = append(p.started, c)
	}
	return p, nil
}

// build makes every component with its constructor, the writer, the
// linker and the ingest first, over the pipeline's connections, and
// registers each one's readiness.
func (p *Pipeline) build() ([]service.Component, error) {
	opts := p.opts
	deps := func(component string) service.Deps {
		return service.Deps{JetStream: p.js, ClickHouse: p.conn, Metrics: p.admin.Registry(), Clock: opts.Clock,
			Log: opts.Log.With().Str("component", component).Logger()}
	}
	var comps []service.Component
	add := func(name string, c service.Component, ready service.ReadinessCheck) {
		comps = append(comps, c)
		p.admin.AddReadiness(name, ready)
	}
	var err error
	if p.writer, err = chwriter.New(opts.Writer, deps("chwriter")); err != nil {
		return nil, err
	}
	add("chwriter", p.writer, p.writer.Ready)
	d := deps("linker")
	if p.linker, err = linker.New(opts.Linker, d.JetStream, d.Log, d.Metrics, d.Clock); err != nil {
		return nil, err
	}
	add("linker", p.linker, p.linker.Ready)
	if p.ingest, err = mllpingest.New(opts.Ingest, deps("mllp-ingest")); err != nil {
		return nil, err
	}
	add("mllp-ingest", p.ingest, p.ingest.Ready)
	if opts.ATNA != nil {
		if p.atna, err = atnaingest.New(*opts.ATNA, deps("atna-ingest")); err != nil {
			return nil, err
		}
		add("atna-ingest", p.atna, p.atna.Ready)
	}
	if opts.FHIR != nil {
		if p.fhir, err = fhiringest.New(*opts.FHIR, deps("fhir-ingest")); err != nil {
			return nil, err
		}
		add("fhir-ingest", p.fhir, p.fhir.Ready)
	}
	if opts.API != nil {
		if p.api, err = api.New(*opts.API, deps("api")); err != nil {
			return nil, err
		}
		add("api", p.api, p.api.Ready)
	}
	if opts.Scorecard != nil {
		// Closed scorecards are published on scorecards.<network> too.
		if p.cards, err = scorecard.NewService(*opts.Scorecard, deps("scorecard")); err != nil {
			return nil, err
		}
		add("scorecard", p.cards, p.cards.Ready)
	}
	return comps, nil
}

// MLLPAddrs maps each network to the address its MLLP listener took.
func (p *Pipeline) MLLPAddrs() map[string]string { return p.ingest.Addrs() }

// ATNAAddrs maps each network to the addresses its audit-record listeners
// took: the syslog stream listener, then the UDP one when there is one
// (none when the listener does not run).
func (p *Pipeline) ATNAAddrs() map[string][]string {
	out := map[string][]string{}
	if p.atna == nil {
		return out
	}
	for n, a := range p.atna.Addrs() {
		out[n] = append(out[n], a)
	}
	for n, a := range p.atna.UDPAddrs() {
		out[n] = append(out[n], "udp:"+a)
	}
	return out
}

// FHIRAddr is where the FHIR ingest listens ("" when it does not run).
func (p *Pipeline) FHIRAddr() string {
	if p.fhir == nil {
		return ""
	}
	return p.fhir.Addr()
}

// APIAddr is where the API listens ("" when it does not run).
func (p *Pipeline) APIAddr() string {
	if p.api == nil {
		return ""
	}
	return p.api.Addr()
}

// AdminAddr is where /metrics, /healthz and /readyz answer.
func (p *Pipeline) AdminAddr() string { return p.admin.Addr() }

// ClickHouse is the pipeline's ClickHouse connection and DSN.
func (p *Pipeline) ClickHouse() (driver.Conn, chstore.DSN) { return p.conn, p.dsn }

// JetStream is the pipeline's JetStream context.
func (p *Pipeline) JetStream() jetstream.JetStream { return p.js }

// NATSURL is the URL of the NATS server in use, to print: any password in
// it is masked.
func (p *Pipeline) NATSURL() string { return p.nc.ConnectedUrlRedacted() }

// Counts are what ClickHouse holds, deduplicated.
type Counts struct {
	Events   uint64
	Outcomes uint64
}

// Stored reads the deduplicated counts from the views.
func (p *Pipeline) Stored(ctx context.Context) (Counts, error) {
	var c Counts
	if err := p.conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&c.Events); err != nil {
		return c, fmt.Errorf("pipeline.Stored events: %w", err)
	}
	if err := p.conn.QueryRow(ctx, "SELECT count() FROM outcomes").Scan(&c.Outcomes); err != nil {
		return c, fmt.Errorf("pipeline.Stored outcomes: %w", err)
	}
	return c, nil
}

// WaitStored polls ClickHouse until it holds at least the wanted counts or
// ctx ends; it returns the last counts seen.
func (p *Pipeline) WaitStored(ctx context.Context, want Counts) (Counts, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := p.Stored(ctx)
		if err == nil && got.Events >= want.Events && got.Outcomes >= want.Outcomes {
			return got, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return got, fmt.Errorf("pipeline.WaitStored: have %d events and %d outcomes, want %d and %d: %w",
				got.Events, got.Outcomes, want.Events, want.Outcomes, err)
		case <-tick.C:
		}
	}
}

// Shutdown stops the ingest first (no new input), then the linker and the
// writer (each flushes), then the connections and the embedded server. It
// is idempotent.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	err := service.ShutdownAll(ctx, p.started...)
	p.started = nil
	if p.conn != nil {
		err = errors.Join(err, p.conn.Close())
		p.conn = nil
	}
	if p.nc != nil {
		// Every component has flushed and awaited its acks by now.
		p.nc.Close()
		p.nc = nil
	}
	if p.embedded != nil {
		p.embedded.Shutdown()
		p.embedded = nil
	}
	return err
}

// ClassCounts returns, per network, the number of outcomes of each class
// (DOMAIN.md names) as the deduplicated `outcomes` view holds them.
func (p *Pipeline) ClassCounts(ctx context.Context) (map[string]map[string]uint64, error) {
	rows, err := p.conn.Query(ctx, "SELECT network, outcome, count() FROM outcomes GROUP BY network, outcome")
	if err != nil {
		return nil, fmt.Errorf("pipeline.ClassCounts: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]uint64{}
	for rows.Next() {
		var network, class string
		var n uint64
		if err := rows.Scan(&network, &class, &n); err != nil {
			return nil, fmt.Errorf("pipeline.ClassCounts: %w", err)
		}
		if out[network] == nil {
			out[network] = map[string]uint64{}
		}
		out[network][class] = n
	}
	return out, rows.Err()
}
