package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// InboxPrefix is the prefix of the reply subjects of service name's
// connection: `_INBOX_<name>` (a character that may not be in a subject
// token becomes `_`). Every reply the service awaits (PubAcks, JetStream
// API answers, pulled messages, a KV watcher's deliveries) arrives under
// it, and deploy/nats/accounts.conf lets each service's user subscribe to
// its own prefix only, so no service can read another's replies.
func InboxPrefix(name string) string {
	if name == "" {
		return nats.InboxPrefix[:len(nats.InboxPrefix)-1]
	}
	token := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
	return "_INBOX_" + token
}

// Connect dials NATS as service name with reconnects forever (a service
// outlives a NATS restart), its replies under InboxPrefix(name). An error
// names the servers without their credentials.
func Connect(urls, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(urls,
		nats.Name(name),
		nats.CustomInboxPrefix(InboxPrefix(name)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		return nil, fmt.Errorf("bus.Connect %s: %w", RedactURLs(urls), redactError(err, urls))
	}
	return nc, nil
}

// RedactURLs is a comma-separated list of server URLs fit for a log: a
// password, or a token (user-info without a colon), is replaced by
// "xxxxx", a URL that does not parse by "(unparsable URL)" (its text may
// hold a password).
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)"
		case u.User != nil:
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx") // a token
			}
			parts[i] = u.String()
		default:
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// redactError keeps err when its text holds none of the passwords or
// tokens of urls; else it is replaced by its text with each one masked
// (url.Parse, for one, repeats the whole URL in its error).
func redactError(err error, urls string) error {
	text := err.Error()
	masked := text
	for _, secret := range urlSecrets(urls) {
		masked = strings.ReplaceAll(masked, secret, "xxxxx")
	}
	if masked == text {
		return err
	}
	return errors.New(masked)
}

// urlSecrets are the user-info secrets of urls: the password of
// user:password@, or a whole user-info without a colon (a token), as
// written and as decoded.
func urlSecrets(urls string) []string {
	var out []string
	for _, p := range strings.Split(urls, ",") {
		rest := strings.TrimSpace(p)
		if _, afterScheme, ok := strings.Cut(rest, "://"); ok {
			rest = afterScheme
		}
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			continue
		}
		info := rest[:at]
		secret := info
		if c := strings.Index(info, ":"); c >= 0 {
			secret = info[c+1:]
		}
		if secret == "" {
			continue
		}
		out = append(out, secret)
		if dec, err := url.PathUnescape(secret); err == nil && dec != secret {
			out = append(out, dec)
		}
	}
	return out
}

// AwaitAck waits for the acknowledgement of an asynchronous publish, at
// most timeout: a PubAck that never comes (a stream leader lost mid-publish)
// is an error the publisher can retry, not a hang.
func AwaitAck(ctx context.Context, f jetstream.PubAckFuture, timeout time.Duration) (*jetstream.PubAck, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-t.C:
		return nil, fmt.Errorf("no PubAck within %s", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
