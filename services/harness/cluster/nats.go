// Package cluster runs hinscore against clustered engines in-process: a
// NATS JetStream cluster of embedded nats-server nodes routed on loopback,
// for the tests that prove the pipeline survives the loss of a node and
// scales out by replicas. Its tests also check every file under deploy/
// (NATS, ClickHouse, Kubernetes, observability) against the services' real
// configuration, offline, and its chschema package generates the
// ClickHouse cluster schema from schemas/.
package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSOptions configures a NATSCluster.
type NATSOptions struct {
	// Nodes is the number of servers (default 3: JetStream's R3 needs 3).
	Nodes int
	// Dir holds one store directory per node (a t.TempDir() in tests).
	Dir string
	// Name is the cluster name (default "hinscore").
	Name string
	// Config, when set, is the path of a NATS configuration file every node
	// loads first (e.g. deploy/nats/accounts.conf: accounts, users and
	// permissions); listen addresses, routes and the store are set here.
	Config string
}

// NATSCluster is a JetStream cluster of embedded servers on 127.0.0.1.
// Every node keeps its ports and store for the cluster's lifetime, so a
// node stopped with StopNode comes back with StartNode where it was.
type NATSCluster struct {
	opts   NATSOptions
	client []int // client port of each node
	route  []int // cluster (route) port of each node

	mu    sync.Mutex
	nodes []*server.Server // nil while a node is stopped
}

// StartNATSCluster starts every node and waits until JetStream has a meta
// leader and every node is current.
func StartNATSCluster(ctx context.Context, o NATSOptions) (*NATSCluster, error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Name == "" {
		o.Name = "hinscore"
	}
	if o.Nodes < 1 || o.Dir == "" {
		return nil, fmt.Errorf("cluster.StartNATSCluster: want Nodes >= 1 and a Dir, got %d and %q", o.Nodes, o.Dir)
	}
	ports, err := freePorts(2 * o.Nodes)
	if err != nil {
		return nil, fmt.Errorf("cluster.StartNATSCluster: %w", err)
	}
	c := &NATSCluster{opts: o, client: ports[:o.Nodes], route: ports[o.Nodes:], nodes: make([]*server.Server, o.Nodes)}
	for i := range o.Nodes {
		if err := c.StartNode(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// nodeOptions builds node i's server options: the configuration file
// first, then what the cluster fixes.
func (c *NATSCluster) nodeOptions(i int) (*server.Options, error) {
	opts := &server.Options{}
	if c.opts.Config != "" {
		var err error
		if opts, err = server.ProcessConfigFile(c.opts.Config); err != nil {
			return nil, fmt.Errorf("cluster: node %d: config %s: %w", i, c.opts.Config, err)
		}
	}
	opts.ServerName = "n" + strconv.Itoa(i)
	opts.Host, opts.Port = "127.0.0.1", c.client[i]
	opts.HTTPPort = 0
	opts.JetStream = true
	opts.StoreDir = filepath.Join(c.opts.Dir, "n"+strconv.Itoa(i))
	opts.NoSigs, opts.NoLog = true, true
	opts.MaxPayload = 8 << 20
	opts.Cluster = server.ClusterOpts{Name: c.opts.Name, Host: "127.0.0.1", Port: c.route[i]}
	opts.Routes = nil
	for j, p := range c.route {
		if j != i {
			opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
		}
	}
	return opts, nil
}

// StartNode starts node i (again) on its ports and store.
func (c *NATSCluster) StartNode(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[i] != nil {
		return nil
	}
	opts, err := c.nodeOptions(i)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(opts.StoreDir, 0o755); err != nil {
		return fmt.Errorf("cluster.StartNode %d: %w", i, err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("cluster.StartNode %d: %w", i, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("cluster.StartNode %d: not ready for connections after 15s", i)
	}
	c.nodes[i] = srv
	return nil
}

// StopNode shuts node i down and waits for it (its store stays).
func (c *NATSCluster) StopNode(i int) {
	c.mu.Lock()
	srv := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Shutdown stops every node.
func (c *NATSCluster) Shutdown() {
	for i := range c.nodes {
		c.StopNode(i)
	}
}

// URL lists every node's client URL, comma-separated, the form nats.Connect
// and NATS_URL take: a client fails over to the next node by itself.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.client))
	for i := range c.client {
		urls[i] = c.NodeURL(i)
	}
	return strings.Join(urls, ",")
}

// NodeURL is node i's client URL.
func (c *NATSCluster) NodeURL(i int) string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.client[i]))
}

// Node returns node i's server, nil while it is stopped.
func (c *NATSCluster) Node(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// WaitReady waits until a running node is the JetStream meta leader and
// every running node is current with it.
func (c *NATSCluster) WaitReady(ctx context.Context) error {
	for {
		c.mu.Lock()
		leader, current, running := false, true, 0
		for _, s := range c.nodes {
			if s == nil {
				continue
			}
			running++
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
		}
		c.mu.Unlock()
		if running > 0 && leader && current {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster.WaitReady: leader=%t current=%t: %w", leader, current, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts reserves n distinct free loopback ports. They are released
// before the servers bind them, which leaves a small race with other
// processes; the tests accept it, as the fault suite does.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, ln)
		addr, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			return nil, fmt.Errorf("free port: %v is not a TCP address", ln.Addr())
		}
		ports = append(ports, addr.Port)
	}
	return ports, nil
}
