// Command configdoc writes the configuration table of each service's
// README from the service's configuration struct (service.Describe: every
// variable, its default and its meaning, as the loader reads them),
// between the lines <!-- config:begin --> and <!-- config:end -->, and
// leaves the rest of each README as it is. `make generate` runs it;
// `make checkgenerate` fails when a committed table is stale.
// Run it from services/hinscore: go run ./cmd/configdoc [-check]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hinscore/hinscore/services/api"
	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	"github.com/hinscore/hinscore/services/chwriter"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
	"github.com/hinscore/hinscore/services/scorecard"
)

// readmes are the READMEs with a configuration table, under the
// repository, and the configurations the table lists.
var readmes = []struct {
	path    string
	configs []any
}{
	{"services/mllp-ingest/README.md", []any{mllpingest.Config{}}},
	{"services/atna-ingest/README.md", []any{atnaingest.Config{}}},
	{"services/fhir-ingest/README.md", []any{fhiringest.Config{}}},
	{"services/linker/README.md", []any{linker.Config{}}},
	{"services/chwriter/README.md", []any{chwriter.Config{}}},
	{"services/scorecard/README.md", []any{scorecard.ServiceConfig{}}},
	{"services/api/README.md", []any{api.Config{}, api.ClientConfig{}}},
}

// The lines the table goes between.
const (
	begin = "<!-- config:begin -->"
	end   = "<!-- config:end -->"
)

// ErrNoMarkers is returned for a README without the table's markers.
var ErrNoMarkers = errors.New("configdoc: no " + begin + " ... " + end + " lines")

func main() {
	if err := realMain(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

func realMain(args []string) error {
	fs := flag.NewFlagSet("configdoc", flag.ContinueOnError)
	root := fs.String("root", "../..", "the repository")
	check := fs.Bool("check", false, "write nothing; fail when a table is stale")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var stale []error
	for _, r := range readmes {
		path := filepath.Join(*root, r.path)
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		updated, err := splice(old, service.Table(service.Describe(r.configs...)))
		if err != nil {
			return fmt.Errorf("%s: %w", r.path, err)
		}
		switch {
		case bytes.Equal(old, updated):
		case *check:
			stale = append(stale, fmt.Errorf("%s: the configuration table is stale: run make generate", r.path))
		default:
			if err := os.WriteFile(path, updated, 0o644); err != nil {
				return err
			}
		}
	}
	return errors.Join(stale...)
}

// splice puts table between the markers of readme, in place of what was
// there.
func splice(readme []byte, table string) ([]byte, error) {
	b := bytes.Index(readme, []byte(begin+"\n"))
	e := bytes.Index(readme, []byte(end))
	if b < 0 || e < b {
		return nil, ErrNoMarkers
	}
	var out bytes.Buffer
	out.Write(readme[:b+len(begin)+1])
	out.WriteString(table)
	out.Write(readme[e:])
	return out.Bytes(), nil
}
