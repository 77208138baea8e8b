package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hinscore/hinscore/services/lib/bus"
)

// AuditEntry is one line of the audit log: who opened (or tried to open)
// which chain's raw messages, when and why. A served access is written (and
// synced) before any byte of the raw messages is sent, so an access that is
// not logged does not happen; an attempt the API refused (wrong role, no
// valid reason, a chain of another network or none) is logged as denied,
// with the refusal, its chain and reason as given (cut to a bound length).
type AuditEntry struct {
	Time    time.Time `json:"time"`
	Who     string    `json:"who"`
	Role    Role      `json:"role"`
	TokenID string    `json:"token_id"` // first 12 hex digits of the token's hash
	Action  string    `json:"action"`   // raw | evidence | case
	Chain   string    `json:"chain"`
	// Responder and Period name the case packet an opening was made for
	// (action case); "" otherwise.
	Responder string `json:"responder,omitempty"`
	Period    string `json:"period,omitempty"`
	Network   string `json:"network"`
	Reason    string `json:"reason"`
	Remote    string `json:"remote"`
	Messages  int    `json:"messages"`
	RequestID string `json:"request_id"`
	Outcome   string `json:"outcome"`           // served | denied
	Refusal   string `json:"refusal,omitempty"` // why a denied attempt was refused
}

// Audit outcomes.
const (
	AuditServed = "served"
	AuditDenied = "denied"
)

// auditLog appends JSON lines to a file opened O_APPEND, one write per
// entry, synced; a mutex keeps concurrent entries whole.
type auditLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func openAuditLog(path string) (*auditLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("api.openAuditLog: %w", err)
	}
	return &auditLog{path: path, f: f}, nil
}

// write appends e and returns its JSON (without the newline).
func (a *auditLog) write(e AuditEntry) ([]byte, error) {
	line, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("api.audit: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil, fmt.Errorf("api.audit: log %s is closed", a.path)
	}
	if _, err := a.f.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("api.audit %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		return nil, fmt.Errorf("api.audit %s: %w", a.path, err)
	}
	return line[:len(line):len(line)], nil
}

// recordAudit records a complete entry: in the local audit log when there
// is one (the api server's), then in the AUDIT stream, where the entries
// of every api replica and of the command line are kept together. Nothing
// may be served unless it returns nil.
func recordAudit(ctx context.Context, log *auditLog, js jetstream.JetStream, e AuditEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("api.audit: %w", err)
	}
	if log != nil {
		if line, err = log.write(e); err != nil {
			return err
		}
	}
	if js == nil {
		if log == nil {
			return statusErr(http.StatusServiceUnavailable, "no audit log and no %s stream to record the access in", bus.StreamAudit)
		}
		return nil // nothing can be served without the bus; a refusal is in the file
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditPublishTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: bus.AuditSubject(e.Network), Data: line}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("audit:"+e.RequestID)); err != nil {
		return statusErr(http.StatusServiceUnavailable, "audit entry not stored in %s: %v", bus.StreamAudit, err)
	}
	return nil
}

// auditPublishTimeout bounds the wait for the AUDIT PubAck of one entry.
const auditPublishTimeout = 5 * time.Second

func (a *auditLog) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	if err != nil {
		return fmt.Errorf("api.audit close %s: %w", a.path, err)
	}
	return nil
}
