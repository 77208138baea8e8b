// Package faults runs hinscore's services as separate processes (NATS,
// mllp-ingest, fhir-ingest, linker, chwriter) against ClickHouse, drives simulated
// traffic through them at a steady rate, injects faults (kill -9 and
// restart, NATS and ClickHouse outages, malformed floods, slow and
// abandoned connections) and checks from ClickHouse that nothing was lost
// or counted twice. The end-to-end benchmark (cmd/e2ebench) uses the same
// harness.
package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one started service process. It is only ever signalled by its
// own PID.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}

	mu      sync.Mutex
	peakRSS int64 // largest VmHWM seen, kB
	err     error
}

// startProc starts bin with env added to a minimal environment, its output
// in logPath.
func startProc(name, bin string, args, env []string, logPath string) (*Proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("faults.start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}, env...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so a Ctrl-C of the test does not reach it
	// before the harness has stopped it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("faults.start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the process (kill -9) and waits for it to end.
func (p *Proc) Kill() {
	p.sampleRSS()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout for a clean exit, then kills.
func (p *Proc) Stop(timeout time.Duration) error {
	p.sampleRSS()
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("faults.stop %s: still running %s after SIGTERM, killed", p.Name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var ee *exec.ExitError
	if p.err != nil && !(errors.As(p.err, &ee) && ee.ExitCode() == 0) {
		return fmt.Errorf("faults.stop %s: %w", p.Name, p.err)
	}
	return nil
}

// PeakRSS is the largest resident set the process has had (VmHWM), in
// bytes, as of the last sample (taken at every Stop/Kill and by
// SampleRSS).
func (p *Proc) PeakRSS() int64 {
	p.sampleRSS()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS * 1024
}

func (p *Proc) sampleRSS() {
	if p.Exited() {
		return
	}
	kb, err := vmHWM(p.PID())
	if err != nil {
		return
	}
	p.mu.Lock()
	p.peakRSS = max(p.peakRSS, kb)
	p.mu.Unlock()
}

// CPUTime is the CPU the process has used so far, user and system time
// together (0 once it has ended: Stop and Kill end the accounting).
func (p *Proc) CPUTime() time.Duration {
	if p.Exited() {
		return 0
	}
	d, err := ProcessCPU(p.PID())
	if err != nil {
		return 0
	}
	return d
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, which the Linux
// ABI fixes at 100 on every architecture Go runs hinscore on.
const clockTick = 10 * time.Millisecond

// ProcessCPU reads the user and system time of any process (fields 14 and
// 15 of /proc/PID/stat, after the parenthesised command name, which may
// itself hold spaces).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("faults.ProcessCPU %d: no command name in stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("faults.ProcessCPU %d: %d fields in stat", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("faults.ProcessCPU %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// vmHWM reads a process's peak resident set size in kB.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("faults.vmHWM %d: no VmHWM", pid)
}

// waitFor polls cond every 50 ms until it holds, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("faults: %s: not within %s", what, timeout)
		case <-t.C:
		}
	}
	return nil
}
