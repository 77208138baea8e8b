package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientTokenSources: the CLI takes its token from --token-file, from
// the file $HINSCORE_API_TOKEN_FILE names, or from $HINSCORE_API_TOKEN;
// --token on the command line still works but warns; a bad file is a usage
// error that never prints what the file holds.
func TestClientTokenSources(t *testing.T) {
	const secret = "s3cret-token-of-ivy"
	const id = "00000000-0000-0000-0000-000000000001"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "unknown token", "status": 401})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id})
	}))
	defer api.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoLines := filepath.Join(dir, "two-lines")
	if err := os.WriteFile(twoLines, []byte(secret+"\nsecond-line-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(env map[string]string, args ...string) (string, string, error) {
		for _, k := range []string{EnvClientToken, EnvClientTokenFile} {
			t.Setenv(k, env[k])
		}
		var out, errb bytes.Buffer
		err := RunClientCLI(context.Background(), "chain", append(append([]string{"--api", api.URL, "--json"}, args...), id), &out, &errb)
		return out.String(), errb.String(), err
	}
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
		warn bool
	}{
		"--token-file":     {nil, []string{"--token-file", file}, false},
		"$TOKEN_FILE":      {map[string]string{EnvClientTokenFile: file}, nil, false},
		"$TOKEN":           {map[string]string{EnvClientToken: secret}, nil, false},
		"file over $TOKEN": {map[string]string{EnvClientToken: "stale", EnvClientTokenFile: file}, nil, false},
		"flag over env":    {map[string]string{EnvClientTokenFile: twoLines}, []string{"--token-file", file}, false},
		"--token (argv)":   {nil, []string{"--token", secret}, true},
	} {
		out, stderr, err := run(c.env, c.args...)
		if err != nil || !strings.Contains(out, id) {
			t.Errorf("%s: %v, out %q", name, err, out)
		}
		if warned := strings.Contains(stderr, "warning: --token on the command line is visible"); warned != c.warn {
			t.Errorf("%s: stderr %q, want a warning %v", name, stderr, c.warn)
		}
	}
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"both flags":       {nil, []string{"--token-file", file, "--token", secret}, "not both"},
		"missing file":     {nil, []string{"--token-file", filepath.Join(dir, "absent")}, "token file"},
		"two-line file":    {map[string]string{EnvClientTokenFile: twoLines}, nil, "one line"},
		"no token at all":  {nil, nil, "no token"},
		"a directory file": {nil, []string{"--token-file", dir}, "token file"},
	} {
		_, stderr, err := run(c.env, c.args...)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrUsage with %q", name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "second-line-secret") || strings.Contains(stderr, "second-line-secret")) {
			t.Errorf("%s: the file's content printed: %v %s", name, err, stderr)
		}
	}
}
