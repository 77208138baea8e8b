package api

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// AuditEntry is one line of the audit log: who opened (or tried to open)
// which chain's raw messages, when and why. A served access is written (and
// synced) before any byte of the raw messages is sent, so an access that is
// not logged does not happen; an attempt the API refused (wrong role, no
// valid reason, a chain of another network or none) is logged as denied,
// with the refusal, its chain and reason as given (cut to a bound length).
type AuditEntry struct {
	Time      time.Time `json:"time"`
	Who       string    `json:"who"`
	Role      Role      `json:"role"`
	TokenID   string    `json:"token_id"` // first 12 hex digits of the token's hash
	Action    string    `json:"action"`   // raw | evidence
	Chain     string    `json:"chain"`
	Network   string    `json:"network"`
	Reason    string    `json:"reason"`
	Remote    string    `json:"remote"`
	Messages  int       `json:"messages"`
	RequestID string    `json:"request_id"`
	Outcome   string    `json:"outcome"`           // served | denied
	Refusal   string    `json:"refusal,omitempty"` // why a denied attempt was refused
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
