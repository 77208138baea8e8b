package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// SessionBucket is the JetStream key-value bucket of the views' logins:
// every api replica reads and revokes the same sessions, and a restart
// forgets none.
const SessionBucket = "api_sessions"

// sessionTTL is how long a login lasts; the bucket forgets a session then
// even if nobody logs out.
const sessionTTL = 8 * time.Hour

// Cookie names of the views. The session cookie carries a random session
// id, never the API token: logging out deletes the session, so a copied
// cookie stops working everywhere at once.
const (
	sessionCookie = "hinscore_session"
	// loginCSRFCookie carries the login form's CSRF token (double submit:
	// the form's hidden field must equal it); there is no session yet.
	loginCSRFCookie = "hinscore_login_csrf"
)

var errNoSession = errors.New("api: no such session")

// session is one login: whose token, the CSRF token every state-changing
// form of the views must carry, and when it ends.
type session struct {
	TokenHash string `json:"token_hash"`
	CSRF      string `json:"csrf"`
	Expires   int64  `json:"expires_ms"`
}

// sessions keeps the logins in the bucket under the SHA-256 of their id, so
// whoever reads the bucket learns no cookie.
type sessions struct {
	kv jetstream.KeyValue
}

// openSessions creates the sessions bucket, or updates it to this
// version's configuration: the api's own store, as the linker's lease
// bucket is the linker's, whatever HINSCORE_STREAMS says of the shared
// streams. replicas is that of the streams.
func openSessions(ctx context.Context, js jetstream.JetStream, replicas int) (*sessions, error) {
	kv, err := bus.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      SessionBucket,
		Description: "hinscore api: the web views' logins (by the SHA-256 of the session id)",
		History:     1,
		TTL:         sessionTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("api.openSessions: %w", err)
	}
	return &sessions{kv: kv}, nil
}

func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// randomToken is 32 random bytes in hex: session ids and CSRF tokens.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// create stores a new login of the token hash and returns its id.
func (s *sessions) create(ctx context.Context, tokenHash string, now time.Time) (string, session, error) {
	id := randomToken()
	sess := session{TokenHash: tokenHash, CSRF: randomToken(), Expires: now.Add(sessionTTL).UnixMilli()}
	b, err := json.Marshal(sess)
	if err != nil {
		return "", session{}, fmt.Errorf("api.sessions.create: %w", err)
	}
	if _, err := s.kv.Create(ctx, sessionKey(id), b); err != nil {
		return "", session{}, fmt.Errorf("api.sessions.create: %w", err)
	}
	return id, sess, nil
}

// get returns the live session of id; errNoSession when there is none
// (never created, logged out, expired).
func (s *sessions) get(ctx context.Context, id string, now time.Time) (session, error) {
	if len(id) != 64 {
		return session{}, errNoSession
	}
	e, err := s.kv.Get(ctx, sessionKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return session{}, errNoSession
	}
	if err != nil {
		return session{}, fmt.Errorf("api.sessions.get: %w", err)
	}
	var sess session
	if err := json.Unmarshal(e.Value(), &sess); err != nil || now.UnixMilli() >= sess.Expires {
		return session{}, errNoSession
	}
	return sess, nil
}

// revoke ends the session of id on every replica.
func (s *sessions) revoke(ctx context.Context, id string) error {
	if err := s.kv.Purge(ctx, sessionKey(id)); err != nil {
		return fmt.Errorf("api.sessions.revoke: %w", err)
	}
	return nil
}

// sameToken compares a CSRF token in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
