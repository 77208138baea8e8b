package service

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// A configuration is a struct whose fields say, in tags, where their value
// comes from, so that one declaration gives the variable's name, default
// and meaning to the loader, to the validation messages and to the README
// tables (Describe):
//
//	Lateness time.Duration `env:"HINSCORE_LATENESS" default:"30s" help:"allowed lateness of events"`
//
//   - env names the variable; a value set (not blank) replaces the field.
//   - default is parsed like a value when the variable is unset; without
//     one the field keeps what it holds, so that a caller may start from
//     defaults computed in code (a host name, a map of policies).
//   - file (optional) names a second variable holding the path of a file
//     whose content is parsed into the same field after the first: a type
//     that adds entries (a token list) then holds both.
//   - help is the meaning, for the README.
//
// A struct field without env is a group of settings, walked the same way:
// embedded for the shared ones (bus.NATS, chstore.ClickHouse, seal.Keys,
// ...), which each service declares once by embedding them. Its tag may
// give its variables other defaults, `defaults:"NAME=value;NAME2=value"`,
// and add what concerns this service to the meaning of one of them in the
// README, `note:"NAME=text"`.
//
// Field types: string, bool, the integer kinds (named ones too),
// float64, time.Duration, slices of those or of strings
// (comma-separated), and any type whose pointer implements
// encoding.TextUnmarshaler (its own syntax: a DSN, a key list, a listener
// map), also behind a pointer and in slices.
//
// Once filled, each group with a method Validate() error is checked (the
// innermost first, then the whole configuration); its errors should name
// the variable at fault, each one ("NAME: problem", joined with
// errors.Join).

// Load fills cfg (a pointer to a configuration struct) from env and
// validates it. Every problem is reported at once, each under its
// variable's name, in the error returned and on env (env.Err).
func Load(env *Env, cfg any) error {
	v := configValue(cfg)
	l := &loader{env: env}
	l.fill(v, nil)
	l.validate(v)
	if len(l.errs) == 0 {
		return nil
	}
	env.errs = append(env.errs, l.errs...)
	return fmt.Errorf("service.Load: %w", errors.Join(l.errs...))
}

// LoadOver is Load for a service's ConfigFromEnv: it fills a copy of
// defaults (a configuration with its defaults set) from env and returns it,
// or the zero configuration and an error that says where (the service's
// reader) and names every bad variable.
func LoadOver[C any](env *Env, defaults C, where string) (C, error) {
	c := defaults
	if err := Load(env, &c); err != nil {
		var zero C
		return zero, fmt.Errorf("%s: %w", where, err)
	}
	return c, nil
}

// HashToken is how a bearer token is configured (the api's and the FHIR
// feeds'): the hex SHA-256 of it, so that no configuration holds a token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Defaults sets every field of cfg that has a default to it, as Load does
// when no variable is set, without validating (a configuration whose
// required settings have no default is not valid yet).
func Defaults(cfg any) {
	l := &loader{env: MapEnv(nil)}
	l.fill(configValue(cfg), nil)
	if len(l.errs) > 0 {
		// A default that does not parse is a mistake in the code.
		panic(fmt.Sprintf("service.Defaults: %v", errors.Join(l.errs...)))
	}
}

func configValue(cfg any) reflect.Value {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("service: a configuration is a pointer to a struct, not %T", cfg))
	}
	return v.Elem()
}

type loader struct {
	env  *Env
	errs []error
	seen map[string]bool
}

func (l *loader) fail(name string, err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			l.fail(name, e)
		}
		return
	}
	l.add(fmt.Errorf("%s: %w", name, err))
}

// add records a problem once: a shared group may be checked by the
// configuration that embeds it too.
func (l *loader) add(err error) {
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if l.seen[err.Error()] {
		return
	}
	l.seen[err.Error()] = true
	l.errs = append(l.errs, err)
}

// fill sets the fields of the struct v; defaults overrides the default
// tags of the variables it names.
func (l *loader) fill(v reflect.Value, defaults map[string]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, ok := f.Tag.Lookup("env")
		switch {
		case name == "-":
		case ok:
			l.fillVar(v.Field(i), f, name, defaults)
		case isGroup(f.Type):
			l.fill(v.Field(i), mergeDefaults(defaults, f.Tag.Get("defaults")))
		}
	}
}

func (l *loader) fillVar(field reflect.Value, f reflect.StructField, name string, defaults map[string]string) {
	def, hasDef := f.Tag.Lookup("default")
	if d, ok := defaults[name]; ok {
		def, hasDef = d, true
	}
	value, set := l.env.Lookup(name)
	if set {
		err := parseInto(field, value)
		if err == nil {
			l.fillFile(field, f)
			return
		}
		// What did not parse leaves the default, which validation sees.
		l.fail(name, err)
	}
	switch {
	case hasDef && def == "":
		field.Set(reflect.Zero(field.Type()))
	case hasDef:
		if err := parseInto(field, def); err != nil {
			l.fail(name+" (default)", err)
		}
	}
	l.fillFile(field, f)
}

// fillFile parses into field the content of the file that the field's
// file variable names, when it is set.
func (l *loader) fillFile(field reflect.Value, f reflect.StructField) {
	fileVar := f.Tag.Get("file")
	if fileVar == "" {
		return
	}
	path, set := l.env.Lookup(fileVar)
	if !set {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		l.fail(fileVar, err)
		return
	}
	if err := parseInto(field, string(data)); err != nil {
		l.fail(fileVar, fmt.Errorf("%s: %w", path, err))
	}
}

// mergeDefaults adds the NAME=value pairs of a defaults tag to outer (an
// outer group's overrides win).
func mergeDefaults(outer map[string]string, tag string) map[string]string {
	if tag == "" {
		return outer
	}
	m := map[string]string{}
	for _, pair := range strings.Split(tag, ";") {
		k, v, _ := strings.Cut(pair, "=")
		m[strings.TrimSpace(k)] = v
	}
	for k, v := range outer {
		m[k] = v
	}
	return m
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
	validator       = reflect.TypeFor[interface{ Validate() error }]()
)

// isGroup reports whether a field of type t without env is a group of
// settings to walk (a struct that does not parse itself).
func isGroup(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshaler)
}

// parseInto parses s into field by the field's type.
func parseInto(field reflect.Value, s string) error {
	t := field.Type()
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return field.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	if t.Kind() == reflect.Pointer && reflect.PointerTo(t.Elem()).Implements(textUnmarshaler) {
		p := reflect.New(t.Elem())
		if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return err
		}
		field.Set(p)
		return nil
	}
	if t.Kind() == reflect.Slice {
		return parseList(field, s)
	}
	return parseScalar(field, s)
}

// parseList reads comma-separated items, blanks skipped; every bad item
// is reported.
func parseList(field reflect.Value, s string) error {
	out := reflect.MakeSlice(field.Type(), 0, 0)
	var errs []error
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		e := reflect.New(field.Type().Elem()).Elem()
		if err := parseInto(e, item); err != nil {
			errs = append(errs, err)
			continue
		}
		out = reflect.Append(out, e)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	field.Set(out)
	return nil
}

func parseScalar(field reflect.Value, s string) error {
	t := field.Type()
	switch {
	case t == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration", s)
		}
		field.SetInt(int64(d))
	case t.Kind() == reflect.String:
		field.SetString(s)
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		field.SetBool(b)
	case field.CanInt():
		n, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		field.SetInt(n)
	case field.CanUint():
		n, err := strconv.ParseUint(s, 10, t.Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer from 0 to %d", s, uint64(1)<<t.Bits()-1)
		}
		field.SetUint(n)
	case field.CanFloat():
		f, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		field.SetFloat(f)
	default:
		// A type the loader cannot read is a mistake in the code.
		panic(fmt.Sprintf("service: a setting of type %s: give the type an UnmarshalText", t))
	}
	return nil
}

// validate runs the Validate of every group of v, innermost first, then
// v's own.
func (l *loader) validate(v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("env"); !ok && f.IsExported() && isGroup(f.Type) {
			l.validate(v.Field(i))
		}
	}
	if !t.Implements(validator) {
		return
	}
	err := v.Interface().(interface{ Validate() error }).Validate()
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			l.add(e)
		}
		return
	}
	if err != nil {
		l.add(err)
	}
}
