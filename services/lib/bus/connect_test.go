package bus

import (
	"strings"
	"testing"
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
