package cluster

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// part is where a package of services/ stands in the layout
// (services/README.md): a deployable service (its name), a shared library
// ("lib"), a harness ("harness") or the all-in-one composer ("hinscore").
func part(pkg string) (string, bool) {
	const prefix = "github.com/hinscore/hinscore/services/"
	rest, ok := strings.CutPrefix(pkg, prefix)
	if !ok {
		return "", false
	}
	first, _, _ := strings.Cut(rest, "/")
	return first, true
}

// TestImportDirection checks the import direction services/README.md
// states, on what each package links (tests aside): a library imports no
// service and no harness; a service imports no other service and no
// harness; only the all-in-one hinscore composes services.
func TestImportDirection(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(servicesDir, "*", "go.mod"))
	more, _ := filepath.Glob(filepath.Join(servicesDir, "lib", "*", "go.mod"))
	dirs = append(dirs, more...)
	if len(dirs) < 12 {
		t.Fatalf("found %d modules under %s, want the services' and the libraries'", len(dirs), servicesDir)
	}
	for _, mod := range dirs {
		c := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./...")
		c.Dir = filepath.Dir(mod)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("go list in %s: %v\n%s", c.Dir, err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fields := strings.Fields(line)
			from, ok := part(fields[0])
			if !ok {
				continue
			}
			for _, dep := range fields[1:] {
				to, ok := part(dep)
				if !ok || to == from || to == "lib" {
					continue
				}
				switch {
				case to == "harness" && from != "hinscore":
					t.Errorf("%s imports the harness %s", fields[0], dep)
				case to != "harness" && from != "hinscore":
					t.Errorf("%s (%s) imports %s, upstream or beside it: only hinscore composes services", fields[0], from, dep)
				}
			}
		}
	}
}

// TestDomainDependsOnNothing: lib/domain is the standard library and
// github.com/google/uuid only.
func TestDomainDependsOnNothing(t *testing.T) {
	c := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./...")
	c.Dir = filepath.Join(servicesDir, "lib", "domain")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", c.Dir, err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, "github.com/hinscore/hinscore/services/lib/domain") && pkg != "github.com/google/uuid" {
			t.Errorf("lib/domain depends on %s", pkg)
		}
	}
}
