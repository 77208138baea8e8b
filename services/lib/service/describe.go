package service

import (
	"fmt"
	"reflect"
	"strings"
)

// Setting is one variable of a configuration as its tags declare it.
type Setting struct {
	Name    string
	Default string // "" when there is none
	Help    string
}

// Describe lists the variables of the configurations given (structs or
// pointers to them), in declaration order, each variable once: a shared
// group embedded twice, or in two configurations, is listed where it first
// appears. A group's defaults tag is applied, as Load applies it.
func Describe(cfgs ...any) []Setting {
	var out []Setting
	seen := map[string]bool{}
	add := func(s Setting) {
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s)
		}
	}
	for _, cfg := range cfgs {
		t := reflect.TypeOf(cfg)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		describe(t, nil, nil, add)
	}
	return out
}

// describe adds the variables of the struct t; defaults and notes are
// what the groups around it say of them.
func describe(t reflect.Type, defaults, notes map[string]string, add func(Setting)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, ok := f.Tag.Lookup("env")
		if name == "-" {
			continue
		}
		if !ok {
			if isGroup(f.Type) {
				describe(f.Type, mergeDefaults(defaults, f.Tag.Get("defaults")), mergeDefaults(notes, f.Tag.Get("note")), add)
			}
			continue
		}
		def := f.Tag.Get("default")
		if d, ok := defaults[name]; ok {
			def = d
		}
		help := f.Tag.Get("help")
		if n := notes[name]; n != "" {
			help += "; " + n
		}
		add(Setting{Name: name, Default: def, Help: help})
		if file := f.Tag.Get("file"); file != "" {
			add(Setting{Name: file, Help: fmt.Sprintf("a file holding more of the same, read after `%s` (both are used)", name)})
		}
	}
}

// Table renders settings as the Markdown table of a service's README.
func Table(settings []Setting) string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, s := range settings {
		def := "—"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		help := strings.Join(strings.Fields(s.Help), " ")
		help = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(help)
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, def, help)
	}
	return b.String()
}
