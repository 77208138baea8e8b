package cluster

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/lib/service"
)

// servicesDir is services/, seen from this module.
const servicesDir = "../.."

// goFiles parses the non-test Go files of one directory.
func goFiles(t *testing.T, dir string) []*ast.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		files = append(files, f)
	}
	return files
}

// envName is what an environment variable of a service looks like.
var envName = regexp.MustCompile(`^(HINSCORE_[A-Z0-9_]+|NATS_URL)$`)

// readEnvNames returns every environment variable name that appears as a
// string literal, or in the tags of a configuration struct (env, file,
// defaults: service.Load), in the non-test Go files of the given
// directories: the variables a service can read.
func readEnvNames(t *testing.T, dirs ...string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range dirs {
		for _, f := range goFiles(t, dir) {
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				for _, name := range append(tagVars(s), s) {
					if envName.MatchString(name) {
						names[name] = true
					}
				}
				return true
			})
		}
	}
	return names
}

// tagVars returns the variables a struct tag names: env, file and the
// keys of defaults.
func tagVars(tag string) []string {
	st := reflect.StructTag(tag)
	out := []string{st.Get("env"), st.Get("file")}
	for _, pair := range strings.Split(st.Get("defaults"), ";") {
		name, _, _ := strings.Cut(pair, "=")
		out = append(out, strings.TrimSpace(name))
	}
	return out
}

// defaultAdminAddr is a standalone service's default admin address: what
// its configuration gives HINSCORE_ADMIN_ADDR when it embeds
// service.Process (`defaults:"HINSCORE_ADMIN_ADDR=127.0.0.1:9101"`).
func defaultAdminAddr(t *testing.T, svc string) string {
	t.Helper()
	var addr string
	for _, f := range goFiles(t, filepath.Join(servicesDir, svc)) {
		ast.Inspect(f, func(n ast.Node) bool {
			field, ok := n.(*ast.Field)
			if !ok || field.Tag == nil {
				return true
			}
			tag, _ := strconv.Unquote(field.Tag.Value)
			for _, pair := range strings.Split(reflect.StructTag(tag).Get("defaults"), ";") {
				if name, value, _ := strings.Cut(pair, "="); name == service.EnvAdminAddr {
					addr = value
				}
			}
			return true
		})
	}
	if addr == "" {
		t.Fatalf("%s: no default %s in its configuration", svc, service.EnvAdminAddr)
	}
	return addr
}

// metric is one series family a service exports.
type metric struct {
	name      string
	labels    map[string]bool
	histogram bool
}

// exportedMetrics reads services/*/metrics.go: every prometheus.*Opts
// literal with its Namespace, Subsystem and Name (constants resolved in
// the file) and the label names that follow it.
func exportedMetrics(t *testing.T) map[string]metric {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(servicesDir, "*", "metrics.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no services/*/metrics.go: %v", err)
	}
	out := map[string]metric{}
	for _, path := range paths {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		consts := map[string]string{}
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
							consts[id.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
			return true
		})
		// Label lists kept in a variable (byPartition := []string{"partition"}).
		labelVars := map[string]*ast.CompositeLit{}
		ast.Inspect(f, func(n ast.Node) bool {
			if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
				for i, l := range as.Lhs {
					id, iok := l.(*ast.Ident)
					lit, lok := as.Rhs[i].(*ast.CompositeLit)
					if iok && lok {
						labelVars[id.Name] = lit
					}
				}
			}
			return true
		})
		value := func(e ast.Expr) string {
			switch v := e.(type) {
			case *ast.BasicLit:
				s, _ := strconv.Unquote(v.Value)
				return s
			case *ast.Ident:
				return consts[v.Name]
			}
			return ""
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			opts, ok := call.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			typ, ok := opts.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(typ.Sel.Name, "Opts") {
				return true
			}
			parts := map[string]string{}
			for _, el := range opts.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					parts[kv.Key.(*ast.Ident).Name] = value(kv.Value)
				}
			}
			var name []string
			for _, p := range []string{parts["Namespace"], parts["Subsystem"], parts["Name"]} {
				if p != "" {
					name = append(name, p)
				}
			}
			m := metric{name: strings.Join(name, "_"), labels: map[string]bool{}, histogram: typ.Sel.Name == "HistogramOpts"}
			if len(call.Args) > 1 {
				labels, ok := call.Args[1].(*ast.CompositeLit)
				if id, isID := call.Args[1].(*ast.Ident); isID {
					labels, ok = labelVars[id.Name], labelVars[id.Name] != nil
				}
				if ok {
					for _, l := range labels.Elts {
						m.labels[value(l)] = true
					}
				}
			}
			out[m.name] = m
			return true
		})
	}
	return out
}

// promSeries finds the hinscore series a PromQL expression uses, each with
// the label names it selects or groups by.
var (
	promName     = regexp.MustCompile(`\bhinscore_[a-z0-9_]+`)
	promSelector = regexp.MustCompile(`(hinscore_[a-z0-9_]+)\{([^}]*)\}`)
	promBy       = regexp.MustCompile(`\bby \(([^)]*)\)`)
	labelMatcher = regexp.MustCompile(`([a-z_]+)\s*(=~|!=|!~|=)`)
)

// checkPromQL checks an expression against the exported metrics: every
// series exists (a histogram through _bucket, _sum or _count), every label
// it matches on is one of that series' labels, and every label grouped by
// is a label of some series the expression reads.
func checkPromQL(t *testing.T, where, expr string, metrics map[string]metric) {
	t.Helper()
	used := map[string]metric{}
	for _, name := range promName.FindAllString(expr, -1) {
		m, ok := metrics[name]
		if !ok {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if hm, hok := metrics[base]; hok && hm.histogram && base != name {
				m, ok = hm, true
				m.labels = map[string]bool{"le": true}
				for l := range hm.labels {
					m.labels[l] = true
				}
			}
		}
		if !ok {
			t.Errorf("%s: %s is not exported by any service", where, name)
			continue
		}
		used[name] = m
	}
	for _, sel := range promSelector.FindAllStringSubmatch(expr, -1) {
		m, ok := used[sel[1]]
		if !ok {
			continue
		}
		for _, lm := range labelMatcher.FindAllStringSubmatch(sel[2], -1) {
			if !m.labels[lm[1]] {
				t.Errorf("%s: %s has no label %q", where, sel[1], lm[1])
			}
		}
	}
	for _, by := range promBy.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(by[1], ",") {
			l = strings.TrimSpace(l)
			found := false
			for _, m := range used {
				found = found || m.labels[l]
			}
			if l != "" && !found {
				t.Errorf("%s: grouped by %q, which none of its series has", where, l)
			}
		}
	}
}
