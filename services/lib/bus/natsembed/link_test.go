package natsembed

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// embedders are the service binaries that may link nats-server: the
// all-in-one hinscore (demo, `hinscore up`, `hinscore nats`). Every other
// service connects to a NATS it does not run. The harnesses' tools
// (services/harness/*/cmd) are test code and may embed servers.
var embedders = map[string]bool{"hinscore": true}

// TestOnlyTheAllInOneLinksTheServer fails when a service's binary links
// nats-server (16 packages of it, through an import of this package or of
// the server itself): a standalone service carries no NATS server.
func TestOnlyTheAllInOneLinksTheServer(t *testing.T) {
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	cmds, _ := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*"))
	if len(cmds) < 7 {
		t.Fatalf("found %d service binaries under %s, want the seven services'", len(cmds), root)
	}
	for _, cmd := range cmds {
		name := filepath.Base(cmd)
		c := exec.Command("go", "list", "-deps", ".")
		c.Dir = cmd
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps in %s: %v\n%s", cmd, err, out)
		}
		links := strings.Contains(string(out), "github.com/nats-io/nats-server/v2/")
		switch {
		case links && !embedders[name]:
			t.Errorf("%s links nats-server: only %v may (a service imports bus, never bus/natsembed)", name, embedders)
		case !links && embedders[name]:
			t.Errorf("%s no longer links nats-server: take it off the list", name)
		}
	}
}
