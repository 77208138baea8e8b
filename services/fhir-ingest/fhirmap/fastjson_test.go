package fhirmap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fastTypes are the structs decode() is given.
func fastTypes() []reflect.Type {
	var ts []reflect.Type
	for _, v := range []any{head{}, bundle{}, task{}, messageHeader{}, auditEvent{}, operationOutcome{}} {
		ts = append(ts, reflect.TypeOf(v))
	}
	return ts
}

// sameAsEncodingJSON fails t when the fast path decodes body into typ
// otherwise than encoding/json does; it reports whether the fast path took it.
func sameAsEncodingJSON(t *testing.T, body []byte, typ reflect.Type) bool {
	t.Helper()
	fast := reflect.New(typ)
	if !fastDecode(body, fast.Interface()) {
		return false
	}
	slow := reflect.New(typ)
	if err := json.Unmarshal(body, slow.Interface()); err != nil {
		t.Fatalf("%s: the fast path decoded %q, encoding/json refuses it: %v", typ, body, err)
	}
	if !reflect.DeepEqual(fast.Interface(), slow.Interface()) {
		t.Fatalf("%s: %q decodes to\n%#v\nencoding/json:\n%#v", typ, body, fast.Elem().Interface(), slow.Elem().Interface())
	}
	return true
}

// TestFastDecodeExamples: every example decodes on the fast path (none has
// an escape or a null) into its head and the struct of its type, as
// encoding/json decodes it; into the other structs too when it decodes there.
func TestFastDecodeExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	own := map[string]reflect.Type{}
	for _, typ := range fastTypes() {
		own[strings.ToUpper(typ.Name()[:1])+typ.Name()[1:]] = typ
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range fastTypes() {
			if !sameAsEncodingJSON(t, body, typ) && (typ == reflect.TypeOf(head{}) || typ == own[peekType(body)]) {
				t.Errorf("%s into %s: not on the fast path", filepath.Base(f), typ)
			}
		}
	}
}

// TestFastDecodeGivesUp: what the fast path leaves to encoding/json, and
// that decode then gives encoding/json's result or error.
func TestFastDecodeGivesUp(t *testing.T) {
	for _, body := range []string{
		`{"resourceType":"Task","status":"a\"b"}`,           // escape in a kept string
		`{"resourceType":"Task","Status":"completed"}`,      // matched by case only
		`{"resourceType":"Task","status":"x","status":"y"}`, // repeated
		`{"resourceType":"Task","status":null}`,
		`{"resourceType":"Task","status":1}`,
		"{\"resourceType\":\"Task\",\"status\":\"\xff\"}", // invalid UTF-8 in a kept string
		`{"resourceType":"Task","ſtatus":"completed"}`,    // Unicode folding
		`{"resourceType":"Task"} x`,
		`{"resourceType":"Task","x":01}`,
		`{"resourceType":"Task","output":[null]}`,
		`{"resourceType":"Task","output":[1,]}`,
		`{"resourceType":"Bundle","total":-1}`,
		`{"resourceType":"Bundle","total":1e2}`,
		`{"resourceType":"Bundle","total":4294967296}`,
		`null`,
		`[]`,
	} {
		typ := reflect.TypeOf(task{})
		if strings.Contains(body, "Bundle") {
			typ = reflect.TypeOf(bundle{})
		}
		if sameAsEncodingJSON(t, []byte(body), typ) {
			t.Errorf("%s into %s: decoded on the fast path", body, typ)
		}
		got, want := reflect.New(typ), reflect.New(typ)
		gotErr := decode([]byte(body), got.Interface(), "")
		wantErr := json.Unmarshal([]byte(body), want.Interface())
		if (gotErr == nil) != (wantErr == nil) || (wantErr == nil && !reflect.DeepEqual(got.Interface(), want.Interface())) {
			t.Errorf("%s into %s: decode %v, encoding/json %v", body, typ, gotErr, wantErr)
		}
	}
}

// FuzzFastDecode: whatever the fast path decodes, encoding/json decodes
// to the same. Seeds: our examples and the specification's own.
func FuzzFastDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	official, _ := filepath.Glob(filepath.Join("testdata", "r4-official", "*.json"))
	for _, file := range append(files, official...) {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"resourceType":"Bundle","total":0,"entry":[],"x":[1,-0.5e+3,true,false,null,{"a":"\u00e9\n"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range fastTypes() {
			sameAsEncodingJSON(t, body, typ)
		}
	})
}

// TestFastSupported: every struct decode() is given has the fast path; one
// with a field of another kind, options in a tag, or two keys alike but for
// case would go to encoding/json whole.
func TestFastSupported(t *testing.T) {
	for _, typ := range fastTypes() {
		if _, ok := fastDecoders[typ]; !ok {
			t.Errorf("%s has no fast decoder", typ)
		}
	}
	for _, v := range []any{
		struct {
			N int `json:"n"`
		}{},
		struct {
			S string `json:"s,omitempty"`
		}{},
		struct {
			A string `json:"id"`
			B string `json:"ID"`
		}{},
		struct {
			head
			P []*bool `json:"p"`
		}{},
	} {
		if fastSupported(reflect.TypeOf(v), map[reflect.Type]bool{}) {
			t.Errorf("%T: fast path claimed", v)
		}
	}
}
