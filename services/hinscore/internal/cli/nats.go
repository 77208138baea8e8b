package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hinscore/hinscore/services/lib/bus/natsembed"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/service"
)

// connectJetStream connects a command (named in the connection and in
// errors) to the NATS at url; the caller defers the close.
func connectJetStream(url, command string) (jetstream.JetStream, func(), error) {
	nc, err := bus.Connect(url, "hinscore-"+command)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%s: %w", command, err)
	}
	return js, nc.Close, nil
}

// runNATS runs the embedded NATS JetStream server alone, for services run
// as separate processes on one machine (the fault suite, a small install).
func runNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("nats", stderr)
	data := fs.String("data", ".data/nats", "JetStream store directory")
	addr := fs.String("addr", "127.0.0.1:4222", "client listen address HOST:PORT (port 0: a free one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	host, port, err := natsembed.SplitAddr(*addr)
	if err != nil {
		return fmt.Errorf("%w: --addr: %v", errUsage, err)
	}
	if err := service.CheckProduction(service.NewEnv(), &embeddedNATS{flag: "--addr", addr: *addr}); err != nil {
		return err
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	srv, err := natsembed.Start(*data, host, port)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	// The URL on stdout, alone on its line, so scripts can read it.
	fmt.Fprintln(stdout, srv.URL())
	<-ctx.Done()
	return nil
}

// embeddedNATS is the embedded server's client address, given by flag, as
// production sees it.
type embeddedNATS struct{ flag, addr string }

// ProductionRefusals: the embedded server authenticates nobody, so in
// production it listens on loopback only.
func (n embeddedNATS) ProductionRefusals(ps *service.Problems) {
	host, _, err := natsembed.SplitAddr(n.addr)
	if err == nil && !natsembed.Loopback(host) {
		ps.Add(n.flag, "%s: the embedded NATS authenticates nobody, so anyone reaching it could write any network's events: listen on loopback (127.0.0.1) and run a NATS cluster with accounts (deploy/nats) for remote services", n.addr)
	}
}
