package service

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// pair is a setting that parses itself: key=value.
type pair struct{ K, V string }

func (p *pair) UnmarshalText(b []byte) error {
	k, v, ok := strings.Cut(string(b), "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want key=value", b)
	}
	*p = pair{k, v}
	return nil
}

// Shared is a group several configurations embed, as bus.NATS is.
type Shared struct {
	Admin string `env:"T_ADMIN" help:"admin address"`
	Limit int    `env:"T_LIMIT" default:"5" help:"a bound"`
}

func (s Shared) Validate() error {
	if s.Limit < 1 {
		return fmt.Errorf("T_LIMIT: %d: want at least 1", s.Limit)
	}
	return nil
}

type testConfig struct {
	Name   string          `env:"T_NAME" default:"south" help:"a name"`
	Count  int             `env:"T_COUNT" default:"4" help:"a count"`
	On     bool            `env:"T_ON" help:"a switch"`
	Wait   time.Duration   `env:"T_WAIT" default:"1m" help:"a wait"`
	Rate   float64         `env:"T_RATE" default:"0.5" help:"a rate"`
	Tags   []string        `env:"T_TAGS" default:"x,y" help:"a list"`
	Parts  []uint32        `env:"T_PARTS" help:"numbers"`
	Pair   pair            `env:"T_PAIR" file:"T_PAIR_FILE" help:"its own syntax"`
	Pairs  []pair          `env:"T_PAIRS" help:"a list of them"`
	Opt    *pair           `env:"T_OPT" help:"behind a pointer"`
	Kept   map[string]bool `env:"-"`
	Shared `defaults:"T_ADMIN=127.0.0.1:1234" note:"T_LIMIT=here, at most 9"`
}

func (c testConfig) Validate() error {
	if c.Count > 100 {
		return errors.New("T_COUNT: over 100")
	}
	return nil
}

func load(t *testing.T, file string) (testConfig, error) {
	t.Helper()
	env, err := EnvFile(filepath.Join("testdata", "config", file))
	if err != nil {
		t.Fatal(err)
	}
	var c testConfig
	err = Load(env, &c)
	return c, err
}

func TestLoadReadsEveryKind(t *testing.T) {
	c, err := load(t, "full.env")
	if err != nil {
		t.Fatal(err)
	}
	want := testConfig{Name: "north", Count: 7, On: true, Wait: 90 * time.Second, Rate: 2.5,
		Tags: []string{"a", "b", "c"}, Parts: []uint32{0, 3}, Pair: pair{"from", "file\n"},
		Pairs: []pair{{"x", "1"}, {"y", "2"}}, Opt: &pair{"opt", "1"}, Shared: Shared{Admin: "0.0.0.0:9999", Limit: 5}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
}

func TestLoadDefaults(t *testing.T) {
	var c testConfig
	if err := Load(MapEnv(nil), &c); err != nil {
		t.Fatal(err)
	}
	var d testConfig
	Defaults(&d)
	want := testConfig{Name: "south", Count: 4, Wait: time.Minute, Rate: 0.5, Tags: []string{"x", "y"},
		Shared: Shared{Admin: "127.0.0.1:1234", Limit: 5}}
	if !reflect.DeepEqual(c, want) || !reflect.DeepEqual(d, want) {
		t.Fatalf("Load %+v\nDefaults %+v\nwant %+v", c, d, want)
	}
	// A field without a default keeps what the caller put there.
	c = testConfig{Kept: map[string]bool{"x": true}, On: true}
	if err := Load(MapEnv(nil), &c); err != nil || !c.On || !c.Kept["x"] {
		t.Fatalf("caller's values lost: %+v %v", c, err)
	}
}

// TestLoadNamesEveryBadVariable: one error, every problem in it under its
// variable's name, parse errors and the groups' validation alike, each
// once; and env.Err sees them too.
func TestLoadNamesEveryBadVariable(t *testing.T) {
	env, err := EnvFile("testdata/config/bad.env")
	if err != nil {
		t.Fatal(err)
	}
	var c testConfig
	err = Load(env, &c)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{`T_COUNT: "seven" is not an integer`, `T_ON: "maybe" is not true or false`,
		`T_WAIT: "soon" is not a duration`, `T_RATE: "fast" is not a number`, `T_PARTS: "x" is not an integer`,
		`T_PARTS: "-1" is not an integer`, `T_PAIR: "novalue": want key=value`, `T_PAIRS: "bad": want key=value`,
		`T_LIMIT: 0: want at least 1`} {
		if strings.Count(err.Error(), want) != 1 {
			t.Errorf("error does not say %q once:\n%v", want, err)
		}
	}
	if env.Err() == nil {
		t.Error("env.Err() = nil after a failed Load")
	}
	// A value that does not parse leaves the default.
	if c.Count != 4 || c.Wait != time.Minute {
		t.Errorf("defaults not kept: %+v", c)
	}
}

func TestLoadValidatesTheWhole(t *testing.T) {
	var c testConfig
	err := Load(MapEnv(map[string]string{"T_COUNT": "101"}), &c)
	if err == nil || !strings.Contains(err.Error(), "T_COUNT: over 100") {
		t.Fatalf("Load = %v", err)
	}
}

func TestLoadFileVariable(t *testing.T) {
	var c testConfig
	err := Load(MapEnv(map[string]string{"T_PAIR_FILE": "testdata/config/missing.txt"}), &c)
	if err == nil || !strings.Contains(err.Error(), "T_PAIR_FILE: open testdata/config/missing.txt") {
		t.Fatalf("Load = %v", err)
	}
}

func TestDescribeAndTable(t *testing.T) {
	got := Describe(testConfig{}, &Shared{})
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	want := []string{"T_NAME", "T_COUNT", "T_ON", "T_WAIT", "T_RATE", "T_TAGS", "T_PARTS", "T_PAIR", "T_PAIR_FILE", "T_PAIRS", "T_OPT", "T_ADMIN", "T_LIMIT"}
	if !slices.Equal(names, want) {
		t.Fatalf("variables %q\nwant %q", names, want)
	}
	if got[11].Default != "127.0.0.1:1234" || got[12].Help != "a bound; here, at most 9" || got[0].Default != "south" || got[0].Help != "a name" {
		t.Errorf("declarations: %+v", got)
	}
	table := Table([]Setting{{Name: "A", Default: "1", Help: "one | two <x>"}, {Name: "B", Help: "no\n  default"}})
	if want := "| variable | default | meaning |\n|---|---|---|\n| `A` | `1` | one \\| two &lt;x&gt; |\n| `B` | — | no default |\n"; table != want {
		t.Errorf("table\n%s\nwant\n%s", table, want)
	}
}

func TestLoadOverAndHashToken(t *testing.T) {
	type cfg struct {
		N int `env:"HINSCORE_TEST_N" default:"3" help:"a number"`
	}
	var d cfg
	Defaults(&d)
	got, err := LoadOver(MapEnv(map[string]string{}), d, "x.ConfigFromEnv")
	if err != nil || got.N != 3 {
		t.Fatalf("defaults: %+v, %v", got, err)
	}
	got, err = LoadOver(MapEnv(map[string]string{"HINSCORE_TEST_N": "seven"}), d, "x.ConfigFromEnv")
	if err == nil || got != (cfg{}) || !strings.HasPrefix(err.Error(), "x.ConfigFromEnv: ") || !strings.Contains(err.Error(), "HINSCORE_TEST_N") {
		t.Fatalf("a bad value: %+v, %v; want the zero config and an error naming where and the variable", got, err)
	}
	// sha256("abc")
	if HashToken("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatal("HashToken is not the hex SHA-256")
	}
}

// TestPatientTokensDefaultIsTheDevKey: the tag's default (a tag cannot name
// a constant) is patient.DevKey, the key the ingests warn about.
func TestPatientTokensDefaultIsTheDevKey(t *testing.T) {
	var p PatientTokens
	Defaults(&p)
	if !p.IsDev() {
		t.Fatalf("default patient key %q is not patient.DevKey", p.PatientKey)
	}
}
