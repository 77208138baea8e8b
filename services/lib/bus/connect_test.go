package bus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func TestInboxPrefix(t *testing.T) {
	for name, want := range map[string]string{
		"mllp-ingest": "_INBOX_mllp-ingest",
		"chwriter":    "_INBOX_chwriter",
		"a.b *>c":     "_INBOX_a_b___c",
		"":            "_INBOX",
	} {
		if got := InboxPrefix(name); got != want {
			t.Errorf("InboxPrefix(%q) = %q, want %q", name, got, want)
		}
	}
	nc, err := Connect("nats://127.0.0.1:1", "linker")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if inbox := nc.NewInbox(); !strings.HasPrefix(inbox, "_INBOX_linker.") {
		t.Errorf("the linker's connection makes inboxes like %q, want them under _INBOX_linker.", inbox)
	}
}

// TestConnectNeverPrintsThePassword: a NATS_URL that cannot be used is
// refused with an error naming the servers without the password (or token)
// it holds, which would otherwise reach the service's log.
func TestConnectNeverPrintsThePassword(t *testing.T) {
	for _, tc := range []struct{ urls, secret string }{
		{"nats://chwriter:s3cret-pass@bad host:4222", "s3cret-pass"},
		{"tls://linker:p%40ss-w0rd@nats-0:4222,tls://linker:p%40ss-w0rd@nats 1:4222", "p@ss-w0rd"},
		{"nats://only-a-token-x9@bad host:4222", "only-a-token-x9"},
		{"nats://api:pw-in-%zz@nats:4222", "pw-in-"},
	} {
		nc, err := Connect(tc.urls, "test")
		if err == nil {
			nc.Close()
			t.Errorf("Connect(%q) accepted", tc.urls)
			continue
		}
		for _, secret := range []string{tc.secret, strings.ReplaceAll(tc.secret, "@", "%40")} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Connect's error prints the password %q: %v", secret, err)
			}
		}
	}
}

func TestRedactURLs(t *testing.T) {
	got := RedactURLs("tls://api:secret@nats-0:4222, nats://nats-1:4222,nats://tok@nats-2:4222")
	want := "tls://api:xxxxx@nats-0:4222,nats://nats-1:4222,nats://xxxxx@nats-2:4222"
	if got != want {
		t.Errorf("RedactURLs = %q, want %q", got, want)
	}
}

// TestConnectNamesARefusedLogin: a service whose NATS password is wrong
// fails its stream set-up with NATS's reason (an authorization
// violation), not only a timeout, and without the password.
func TestConnectNamesARefusedLogin(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoSigs: true, NoLog: true, Username: "chwriter", Password: "the-right-one"})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	defer srv.Shutdown()
	const wrong = "a-wrong-password-8"
	n := NATS{URL: "nats://chwriter:" + wrong + "@" + srv.Addr().String(), Streams: "check", StreamReplicas: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err = n.Connect(ctx, "chwriter", 0)
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "authorization") || strings.Contains(err.Error(), wrong) {
		t.Errorf("error %q: want NATS's refusal named, without the password", err)
	}
}
