// Package natsembed starts the NATS server with JetStream inside the
// process: for the demo, the all-in-one hinscore binary and the tests. It is
// the only package that links nats-server, and only those import it, so a
// standalone service's binary carries no NATS server.
package natsembed

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is an in-process NATS server with JetStream, for the demo, the
// composed binary and the tests.
type Embedded struct {
	srv *server.Server
}

// Start starts a NATS server with JetStream storing under dir,
// listening on host:port (port -1 picks a free port).
func Start(dir, host string, port int) (*Embedded, error) {
	opts := &server.Options{
		ServerName: "hinscore-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed.Start: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsembed.Start: server not ready after 10s")
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL of the embedded server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// SplitAddr reads an embedded server's "host:port" ("" or port 0: a free
// port on 127.0.0.1) into the form Start takes.
func SplitAddr(addr string) (host string, port int, err error) {
	if addr == "" {
		return "127.0.0.1", -1, nil
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("natsembed.SplitAddr: %w", err)
	}
	port, err = strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("natsembed.SplitAddr: bad port %q", portText)
	}
	if port == 0 {
		port = -1
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// Loopback reports whether host, as SplitAddr gives it, is reachable from
// this machine only. The embedded server authenticates nobody, so only
// there may production run it.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
