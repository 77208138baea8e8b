package faults

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus/ingest"
)

// Service names, also the binary names under Options.Bin (NATS runs as
// `hinscore nats`).
const (
	NATS     = "nats"
	Ingest   = "mllp-ingest"
	FHIR     = "fhir-ingest"
	ATNA     = "atna-ingest"
	Linker   = "linker"
	Writer   = "chwriter"
	hinscore = "hinscore"
)

// Services lists the processes a Cluster runs, in start order.
var serviceOrder = [...]string{NATS, Ingest, FHIR, ATNA, Linker, Writer}

// Services returns the service names in start order.
func Services() []string { return slices.Clone(serviceOrder[:]) }

// Options configures a Cluster.
type Options struct {
	// Bin holds hinscore, mllp-ingest, fhir-ingest, atna-ingest, linker
	// and chwriter.
	Bin string
	// Dir receives the NATS store and one log file per service.
	Dir string
	// DSN is the ClickHouse database the writer fills (created when missing).
	DSN string
	// Networks get one MLLP listener each, and a FHIR bearer token
	// (FHIRToken).
	Networks []string
	// FHIRNetworks get a FHIR bearer token only (SOAP copies are posted
	// with it too).
	FHIRNetworks []string
	// ATNANetworks get one syslog-TLS listener each (RFC 5425), with a
	// certificate made for the cluster (ATNATLS). atna-ingest runs even
	// without them, on a listener of its own network "faults-atna".
	ATNANetworks []string
	// Env is added to every service's environment (later entries win),
	// e.g. HINSCORE_MLLP_MAX_CONNS=16.
	Env []string
	// ServiceEnv is added to one service's environment after Env, e.g.
	// atna-ingest: HINSCORE_STREAMS=check, so that its restart leaves the
	// streams as a scenario set them.
	ServiceEnv map[string][]string
	// ClickHouseGate puts a Gate between the writer and DSN's server
	// (Cluster.ClickHouseGate), so that a scenario can take ClickHouse
	// away from the writer without stopping a shared server.
	ClickHouseGate bool
}

// Cluster is NATS and the five services, each its own process, on
// loopback ports fixed for its lifetime so that a restarted process is
// found where the old one was.
type Cluster struct {
	opts     Options
	natsAddr string
	fhirAddr string
	mllp     map[string]string
	atna     map[string]string
	// atnaTLS is the audit listeners' certificate and its pool.
	atnaTLS  ingest.SelfSigned
	admin    map[string]string
	procs    map[string]*Proc
	peak     map[string]int64
	restarts map[string]int
	// writerDSN is the DSN the writer is given: opts.DSN, through the
	// gate when there is one.
	writerDSN string
	gate      *Gate
}

// StartCluster starts NATS, the three ingests, the linker and the writer,
// and waits until each one is ready.
func StartCluster(ctx context.Context, o Options) (*Cluster, error) {
	for _, name := range []string{hinscore, Ingest, FHIR, ATNA, Linker, Writer} {
		if _, err := os.Stat(filepath.Join(o.Bin, name)); err != nil {
			return nil, fmt.Errorf("faults.StartCluster: binary: %w", err)
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("faults.StartCluster: %w", err)
	}
	c := &Cluster{
		opts: o, mllp: map[string]string{}, atna: map[string]string{}, admin: map[string]string{},
		procs: map[string]*Proc{}, peak: map[string]int64{}, restarts: map[string]int{},
		writerDSN: o.DSN,
	}
	if len(o.ATNANetworks) == 0 {
		o.ATNANetworks = []string{"faults-atna"}
		c.opts = o
	}
	ports, err := freePorts(2 + len(o.Networks) + len(o.ATNANetworks) + 5)
	if err != nil {
		return nil, err
	}
	c.natsAddr, c.fhirAddr, ports = ports[0], ports[1], ports[2:]
	for i, n := range o.Networks {
		c.mllp[n] = ports[i]
	}
	ports = ports[len(o.Networks):]
	for i, n := range o.ATNANetworks {
		c.atna[n] = ports[i]
	}
	ports = ports[len(o.ATNANetworks):]
	for i, s := range []string{Ingest, FHIR, ATNA, Linker, Writer} {
		c.admin[s] = ports[i]
	}
	if c.atnaTLS, err = ingest.NewSelfSigned(o.Dir, time.Now(), 24*time.Hour, "127.0.0.1"); err != nil {
		return nil, fmt.Errorf("faults.StartCluster: %w", err)
	}
	if o.ClickHouseGate {
		d, err := ParseDSN(o.DSN)
		if err != nil {
			return nil, err
		}
		if c.gate, err = StartGate(d.Addr); err != nil {
			return nil, err
		}
		c.writerDSN = DSN{Addr: c.gate.Addr(), Database: d.Database}.String()
	}
	for _, s := range serviceOrder {
		if err := c.Start(ctx, s); err != nil {
			c.Stop(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return c, nil
}

// MLLPAddrs returns network → listener address, for simulator.Plan.Send.
func (c *Cluster) MLLPAddrs() map[string]string {
	out := make(map[string]string, len(c.mllp))
	for k, v := range c.mllp {
		out[k] = v
	}
	return out
}

// ATNAAddrs returns network → syslog-TLS listener address.
func (c *Cluster) ATNAAddrs() map[string]string { return maps.Clone(c.atna) }

// ATNATLS is the configuration a gateway dials the audit listeners with:
// it trusts their certificate.
func (c *Cluster) ATNATLS() *tls.Config {
	return &tls.Config{RootCAs: c.atnaTLS.Pool, MinVersion: tls.VersionTLS12}
}

// FHIRURL is the FHIR ingest's base URL (POST {FHIRURL}/fhir/{network}/).
func (c *Cluster) FHIRURL() string { return "http://" + c.fhirAddr }

// NATSURL is the NATS client URL.
func (c *Cluster) NATSURL() string { return "nats://" + c.natsAddr }

// Proc returns the current process of a service (nil when not running).
func (c *Cluster) Proc(name string) *Proc { return c.procs[name] }

// ClickHouseGate is the gate between the writer and ClickHouse (nil
// unless Options.ClickHouseGate).
func (c *Cluster) ClickHouseGate() *Gate { return c.gate }

// Restarts counts how many times each service was started again.
func (c *Cluster) Restarts() map[string]int { return c.restarts }

func (c *Cluster) env(name string) []string {
	base := []string{
		"NATS_URL=" + c.NATSURL(),
		"HINSCORE_LOG_LEVEL=warn",
		// Plain-TCP MLLP listeners: a test, not a deployment.
		"HINSCORE_ENV=development",
	}
	// The keys only the ingests hold: patient tokens, and the seal of the
	// bytes they store in EVENTS (the linker and the writer get neither).
	patientKey := []string{"HINSCORE_PATIENT_KEY=hinscore fault suite patient key", "HINSCORE_PATIENT_KEY_ID=faults",
		"HINSCORE_RAW_KEYS=faults:" + strings.Repeat("5a", 32)}
	switch name {
	case Ingest:
		var ls []string
		for _, n := range c.opts.Networks {
			ls = append(ls, n+"="+c.mllp[n])
		}
		base = append(append(base, "HINSCORE_MLLP_LISTENERS="+strings.Join(ls, ",")), patientKey...)
	case FHIR:
		var ts []string
		for _, n := range slices.Concat(c.opts.Networks, c.opts.FHIRNetworks) {
			ts = append(ts, n+"="+hashToken(FHIRToken(n)))
		}
		base = append(append(base, "HINSCORE_FHIR_ADDR="+c.fhirAddr, "HINSCORE_FHIR_TOKENS="+strings.Join(ts, ",")), patientKey...)
	case ATNA:
		var ls []string
		for _, n := range c.opts.ATNANetworks {
			ls = append(ls, n+"="+c.atna[n])
		}
		// Server TLS only: HINSCORE_ENV=development lets a listener take
		// gateways without client certificates.
		base = append(append(base, "HINSCORE_ATNA_LISTENERS="+strings.Join(ls, ","),
			"HINSCORE_ATNA_TLS_CERT="+c.atnaTLS.CertFile, "HINSCORE_ATNA_TLS_KEY="+c.atnaTLS.KeyFile), patientKey...)
	case Linker:
		// Short enough that the run's tail is declared unanswered soon
		// after the traffic stops, long enough that no restart in a
		// scenario leaves a network silent that long.
		// A fixed replica id: a linker restarted after kill -9 takes its
		// partition leases back at once instead of waiting for them to expire.
		base = append(base, "HINSCORE_IDLE=6s", "HINSCORE_LINKER_REPLICA=linker")
	case Writer:
		base = append(base,
			"HINSCORE_CLICKHOUSE_DSN="+c.writerDSN,
			// A killed writer's unacknowledged batch comes back after this.
			"HINSCORE_CHWRITER_ACK_WAIT=5s",
			"HINSCORE_CHWRITER_RETRY_MAX=2s",
		)
	}
	if a := c.admin[name]; a != "" {
		base = append(base, "HINSCORE_ADMIN_ADDR="+a)
	}
	return slices.Concat(base, c.opts.Env, c.opts.ServiceEnv[name])
}

// Start starts one service and waits until it is ready.
func (c *Cluster) Start(ctx context.Context, name string) error {
	if p := c.procs[name]; p != nil && !p.Exited() {
		return fmt.Errorf("faults.Start %s: already running (pid %d)", name, p.PID())
	}
	bin, args := filepath.Join(c.opts.Bin, name), []string(nil)
	if name == NATS {
		bin, args = filepath.Join(c.opts.Bin, hinscore), []string{"nats", "--data", filepath.Join(c.opts.Dir, "nats"), "--addr", c.natsAddr}
	}
	p, err := startProc(name, bin, args, c.env(name), filepath.Join(c.opts.Dir, name+".log"))
	if err != nil {
		return err
	}
	if _, seen := c.procs[name]; seen {
		c.restarts[name]++
	}
	c.procs[name] = p
	ready := func() bool { return dialOK(c.natsAddr) }
	if name != NATS {
		url := "http://" + c.admin[name] + "/readyz"
		ready = func() bool { return httpOK(url) }
	}
	err = waitFor(ctx, 30*time.Second, name+" ready", func() bool { return p.Exited() || ready() })
	if err == nil && p.Exited() {
		err = fmt.Errorf("exited at start")
	}
	if err != nil {
		return fmt.Errorf("faults.Start %s: %w (log: %s)", name, err, tail(filepath.Join(c.opts.Dir, name+".log")))
	}
	return nil
}

// Kill sends SIGKILL to a service's process (kill -9) and waits for it.
func (c *Cluster) Kill(name string) {
	if p := c.procs[name]; p != nil {
		p.Kill()
		c.peak[name] = max(c.peak[name], p.PeakRSS())
	}
}

// Restart stops a service (SIGTERM, or SIGKILL when hard) and starts it again.
func (c *Cluster) Restart(ctx context.Context, name string, hard bool) error {
	p := c.procs[name]
	if p == nil {
		return fmt.Errorf("faults.Restart %s: not started", name)
	}
	if hard {
		c.Kill(name)
	} else {
		err := p.Stop(30 * time.Second)
		c.peak[name] = max(c.peak[name], p.PeakRSS())
		if err != nil {
			return err
		}
	}
	return c.Start(ctx, name)
}

// CPUTimes returns the CPU each running service has used so far.
func (c *Cluster) CPUTimes() map[string]time.Duration {
	out := make(map[string]time.Duration, len(c.procs))
	for name, p := range c.procs {
		out[name] = p.CPUTime()
	}
	return out
}

// PeakRSS returns each service's largest resident set (VmHWM) in bytes
// over all its processes so far.
func (c *Cluster) PeakRSS() map[string]int64 {
	out := map[string]int64{}
	for name, p := range c.procs {
		out[name] = max(c.peak[name], p.PeakRSS())
	}
	return out
}

// Stop ends every service with SIGTERM, the writer first and NATS last,
// and reports the ones that did not stop cleanly.
func (c *Cluster) Stop(ctx context.Context) error {
	var errs []error
	for i := len(serviceOrder) - 1; i >= 0; i-- {
		name := serviceOrder[i]
		p := c.procs[name]
		if p == nil || p.Exited() {
			continue
		}
		c.peak[name] = max(c.peak[name], p.PeakRSS())
		errs = append(errs, p.Stop(30*time.Second))
	}
	if c.gate != nil {
		c.gate.Stop()
	}
	return errors.Join(errs...)
}

// Logs returns the last lines of a service's log, for a failure message.
func (c *Cluster) Logs(name string) string { return tail(filepath.Join(c.opts.Dir, name+".log")) }

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-8):], "\n")
}

func freePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("faults.freePorts: %w", err)
		}
		lns = append(lns, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

func dialOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func httpOK(url string) bool {
	cl := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := cl.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
