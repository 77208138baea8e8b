package cluster

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hinscore/hinscore/services/lib/bus/seal"

	"gopkg.in/yaml.v3"

	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	"github.com/hinscore/hinscore/services/chwriter"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/lib/bus"
	"github.com/hinscore/hinscore/services/lib/bus/ingest"
	"github.com/hinscore/hinscore/services/lib/chstore"
	"github.com/hinscore/hinscore/services/lib/service"
	"github.com/hinscore/hinscore/services/linker"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
	"github.com/hinscore/hinscore/services/scorecard"
)

// object is one Kubernetes resource as parsed from YAML.
type object map[string]any

func (o object) kind() string { return str(o["kind"]) }
func (o object) name() string { return str(dig(o, "metadata", "name")) }

func str(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case int:
		return strconv.Itoa(s)
	}
	return ""
}

// dig walks maps by key.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			if o, ok2 := v.(object); ok2 {
				m = o
			} else {
				return nil
			}
		}
		v = m[k]
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

// readYAML parses every document of a YAML file.
func readYAML(t *testing.T, path string) []object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []object
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o != nil {
			out = append(out, object(o))
		}
	}
}

// kustomization is what the checks need of a kustomization.yaml.
type kustomization struct {
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name, NewTag string
	} `yaml:"images"`
	Replicas []struct {
		Name  string
		Count int
	} `yaml:"replicas"`
	ConfigMapGenerator []generator `yaml:"configMapGenerator"`
	SecretGenerator    []generator `yaml:"secretGenerator"`
	Patches            []struct {
		Path string
	} `yaml:"patches"`
}

type generator struct {
	Name     string
	Behavior string
	Literals []string
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(false)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return k
}

// base loads deploy/k8s/base: every resource file, by kind/name.
func base(t *testing.T) (kustomization, map[string]object) {
	t.Helper()
	dir := filepath.Join(deployDir, "k8s", "base")
	k := readKustomization(t, dir)
	objs := map[string]object{}
	for _, r := range k.Resources {
		for _, o := range readYAML(t, filepath.Join(dir, r)) {
			key := o.kind() + "/" + o.name()
			if _, dup := objs[key]; dup {
				t.Errorf("%s: %s defined twice", r, key)
			}
			objs[key] = o
		}
	}
	return k, objs
}

// serviceSpec is one hinscore service as deployed, with what its code says.
type serviceSpec struct {
	name string
	kind string // Deployment or StatefulSet
	// dirs hold the code that reads its environment, under services/.
	dirs []string
	// validate runs the service's own configuration reader; nil when the
	// module cannot import the service.
	validate func(env *service.Env) error
	// nats and clickhouse: which of NATS_URL and HINSCORE_CLICKHOUSE_DSN it needs.
	nats, clickhouse bool
}

func specs() []serviceSpec {
	cmd := func(s string) string { return filepath.Join(s, "cmd", s) }
	return []serviceSpec{
		{name: "mllp-ingest", kind: "Deployment", dirs: []string{"mllp-ingest", cmd("mllp-ingest"), "lib/service", "lib/bus", "lib/bus/seal"}, nats: true,
			validate: func(e *service.Env) error { _, err := mllpingest.ConfigFromEnv(e); return err }},
		{name: "atna-ingest", kind: "Deployment", dirs: []string{"atna-ingest", cmd("atna-ingest"), "lib/service", "lib/bus", "lib/bus/seal"}, nats: true,
			validate: func(e *service.Env) error { _, err := atnaingest.ConfigFromEnv(e); return err }},
		{name: "fhir-ingest", kind: "Deployment", dirs: []string{"fhir-ingest", cmd("fhir-ingest"), "lib/service", "lib/bus", "lib/bus/seal"}, nats: true,
			validate: func(e *service.Env) error { _, err := fhiringest.ConfigFromEnv(e); return err }},
		{name: "linker", kind: "StatefulSet", dirs: []string{"linker", cmd("linker"), "lib/service", "lib/bus"}, nats: true,
			validate: func(e *service.Env) error { _, err := linker.ConfigFromEnv(e); return err }},
		{name: "chwriter", kind: "Deployment", dirs: []string{"chwriter", cmd("chwriter"), "lib/service", "lib/bus", "lib/chstore"}, nats: true, clickhouse: true,
			validate: func(e *service.Env) error { _, err := chwriter.ConfigFromEnv(e); return err }},
		// The scorecard service publishes closed cards on SCORECARDS.
		{name: "scorecard", kind: "Deployment", dirs: []string{"scorecard", cmd("scorecard"), "lib/service", "lib/bus", "lib/chstore"}, nats: true, clickhouse: true,
			validate: func(e *service.Env) error { _, err := scorecard.ServiceConfigFromEnv(e); return err }},
		// The api module is not a dependency of this one: its variables are
		// checked against its source only.
		{name: "api", kind: "Deployment", dirs: []string{"api", cmd("api"), "lib/service", "lib/bus", "lib/bus/seal", "lib/chstore"}, nats: true, clickhouse: true},
	}
}

// runtimeEnv are variables read by the Go runtime or libraries, not by
// hinscore's code.
var runtimeEnv = map[string]string{
	"SSL_CERT_FILE": "crypto/x509 reads it for the NATS cluster's CA",
}

// container returns the workload's first container.
func container(o object) map[string]any {
	cs := list(dig(o, "spec", "template", "spec", "containers"))
	if len(cs) == 0 {
		return nil
	}
	c, _ := cs[0].(map[string]any)
	return c
}

// env is a service's environment as Kubernetes would give it: its
// envFrom ConfigMaps and Secrets in order, then its env entries (a fieldRef
// to the pod name yields podName).
func env(t *testing.T, c map[string]any, configMaps, secrets map[string]map[string]string, podName string) (map[string]string, []string) {
	t.Helper()
	out := map[string]string{}
	var problems []string
	sources := []struct {
		ref, kind string
		maps      map[string]map[string]string
	}{{"configMapRef", "ConfigMap", configMaps}, {"secretRef", "Secret", secrets}}
	for _, ef := range list(c["envFrom"]) {
		for _, src := range sources {
			if dig(ef, src.ref) == nil {
				continue
			}
			name := str(dig(ef, src.ref, "name"))
			m, ok := src.maps[name]
			if !ok {
				problems = append(problems, "envFrom "+src.kind+" "+name+" does not exist")
			}
			for k, v := range m {
				out[k] = v
			}
		}
	}
	for _, e := range list(c["env"]) {
		name := str(dig(e, "name"))
		switch {
		case dig(e, "value") != nil:
			out[name] = str(dig(e, "value"))
		case str(dig(e, "valueFrom", "fieldRef", "fieldPath")) == "metadata.name":
			out[name] = podName
		default:
			problems = append(problems, name+": only value and the pod name are understood by this check")
		}
	}
	return out, problems
}

// configData collects the base ConfigMaps and Secrets.
func configData(objs map[string]object) (configMaps, secrets map[string]map[string]string) {
	configMaps, secrets = map[string]map[string]string{}, map[string]map[string]string{}
	for _, o := range objs {
		data := map[string]string{}
		field := "data"
		if o.kind() == "Secret" {
			field = "stringData"
		}
		m, _ := dig(o, field).(map[string]any)
		for k, v := range m {
			data[k] = str(v)
		}
		switch o.kind() {
		case "ConfigMap":
			configMaps[o.name()] = data
		case "Secret":
			secrets[o.name()] = data
		}
	}
	return configMaps, secrets
}

// devOverlay applies the dev overlay's generators to the base data the way
// kustomize does: merge adds or overrides keys, replace swaps the whole map.
func devOverlay(t *testing.T, k kustomization, configMaps, secrets map[string]map[string]string) {
	t.Helper()
	apply := func(gens []generator, into map[string]map[string]string, kind string) {
		for _, g := range gens {
			if _, ok := into[g.Name]; !ok {
				t.Errorf("dev overlay: %s %s is not in the base", kind, g.Name)
				continue
			}
			data := map[string]string{}
			if g.Behavior == "merge" {
				for k, v := range into[g.Name] {
					data[k] = v
				}
			} else if g.Behavior != "replace" {
				t.Errorf("dev overlay: %s %s: behavior %q, want merge or replace of the base's", kind, g.Name, g.Behavior)
			}
			for _, l := range g.Literals {
				key, value, ok := strings.Cut(l, "=")
				if !ok {
					t.Errorf("dev overlay: %s %s: literal %q is not KEY=VALUE", kind, g.Name, l)
				}
				data[key] = value
			}
			into[g.Name] = data
		}
	}
	apply(k.ConfigMapGenerator, configMaps, "ConfigMap")
	apply(k.SecretGenerator, secrets, "Secret")
}

// TestManifestsMatchTheServices checks every service's manifests against
// its code: admin port and probes, requests, and that every environment
// variable given is one the service reads; then, with the dev overlay's
// values, that the service's own configuration reader accepts them.
func TestManifestsMatchTheServices(t *testing.T) {
	k, objs := base(t)
	configMaps, secrets := configData(objs)
	natsUsers := accountsUsers(t)
	chUsers := clickhouseUsers(t)
	dev := readKustomization(t, filepath.Join(deployDir, "k8s", "overlays", "dev"))
	devCM, devSecrets := configData(objs)
	devOverlay(t, dev, devCM, devSecrets)
	images := map[string]bool{}
	for _, im := range k.Images {
		images[im.Name] = true
	}

	for _, s := range specs() {
		t.Run(s.name, func(t *testing.T) {
			w, ok := objs[s.kind+"/"+s.name]
			if !ok {
				t.Fatalf("no %s %s in deploy/k8s/base", s.kind, s.name)
			}
			c := container(w)
			if c == nil || str(c["name"]) != s.name {
				t.Fatalf("%s: want one container named %s", s.name, s.name)
			}
			if img := str(c["image"]); img != "hinscore/"+s.name || !images[img] {
				t.Errorf("image %q: want hinscore/%s, tagged in the kustomization", img, s.name)
			}
			defPort := checkAdminPort(t, s, w, c)

			vars, problems := env(t, c, configMaps, secrets, s.name+"-0")
			for _, p := range problems {
				t.Error(p)
			}
			checkEnvRead(t, s, vars, defPort)
			devVars, _ := env(t, c, devCM, devSecrets, s.name+"-0")
			checkKeys(t, s, vars, devVars)
			checkUsers(t, s, vars, devVars, natsUsers, chUsers)
			if s.validate != nil {
				if err := s.validate(service.MapEnv(devVars)); err != nil {
					t.Errorf("the dev overlay's configuration is refused by %s: %v", s.name, err)
				}
			}
		})
	}
}

// checkAdminPort checks the admin endpoints of workload w's container c: the
// port of the service's default admin address, bound on all interfaces so
// that the kubelet reaches the probes; and its resource requests. It
// returns that default port.
func checkAdminPort(t *testing.T, s serviceSpec, w object, c map[string]any) string {
	t.Helper()
	_, defPort, err := net.SplitHostPort(defaultAdminAddr(t, s.name))
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{}
	for _, p := range list(c["ports"]) {
		ports[str(dig(p, "name"))] = str(dig(p, "containerPort"))
	}
	if ports["admin"] != defPort {
		t.Errorf("containerPort admin = %q, the service's default admin port is %s", ports["admin"], defPort)
	}
	if a := str(dig(w, "spec", "template", "metadata", "annotations", "prometheus.io/port")); a != defPort {
		t.Errorf("prometheus.io/port annotation %q, want %s", a, defPort)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := str(dig(c, probe, "httpGet", "path")); got != path {
			t.Errorf("%s path %q, want %s", probe, got, path)
		}
		if got := str(dig(c, probe, "httpGet", "port")); got != "admin" {
			t.Errorf("%s port %q, want the admin port", probe, got)
		}
	}
	for _, r := range []string{"cpu", "memory"} {
		if str(dig(c, "resources", "requests", r)) == "" {
			t.Errorf("no %s request", r)
		}
	}
	return defPort
}

// checkEnvRead checks that every variable the base gives the service is one
// its code reads, that its admin address is bound on all interfaces at
// defPort, and that it is given NATS and ClickHouse only if it uses them.
func checkEnvRead(t *testing.T, s serviceSpec, vars map[string]string, defPort string) {
	t.Helper()
	var dirs []string
	for _, d := range s.dirs {
		dirs = append(dirs, filepath.Join(servicesDir, d))
	}
	read := readEnvNames(t, dirs...)
	for name := range vars {
		if !read[name] && runtimeEnv[name] == "" {
			t.Errorf("%s is set but %s never reads it", name, s.name)
		}
	}
	host, port, err := net.SplitHostPort(vars[service.EnvAdminAddr])
	if err != nil || port != defPort || (host != "0.0.0.0" && host != "") {
		t.Errorf("%s=%q: want 0.0.0.0:%s (the probes come from outside the pod)", service.EnvAdminAddr, vars[service.EnvAdminAddr], defPort)
	}
	if _, ok := vars["NATS_URL"]; ok != s.nats {
		t.Errorf("NATS_URL set: %t, want %t", ok, s.nats)
	}
	if _, ok := vars[chstore.EnvDSN]; ok != s.clickhouse {
		t.Errorf("%s set: %t, want %t", chstore.EnvDSN, ok, s.clickhouse)
	}
}

// ingests are the services that read what the networks send: they make
// the patient tokens and seal the messages' bytes.
var ingests = []string{"mllp-ingest", "atna-ingest", "fhir-ingest"}

// checkKeys checks that the keys that make and seal what identifies a
// patient reach only the services that need them: not the linker, the
// chwriter or the scorecard, which read EVENTS or ClickHouse.
func checkKeys(t *testing.T, s serviceSpec, vars, devVars map[string]string) {
	t.Helper()
	_, baseKeys := vars[seal.EnvRawKeys]
	_, devKeys := devVars[seal.EnvRawKeys]
	ingest := slices.Contains(ingests, s.name)
	if want := ingest || s.name == "api"; baseKeys != want || devKeys != want {
		t.Errorf("%s given (base %t, dev %t), want %t", seal.EnvRawKeys, baseKeys, devKeys, want)
	}
	if want := ingest; (vars["HINSCORE_PATIENT_KEY"] != "") != want {
		t.Errorf("HINSCORE_PATIENT_KEY given: %t, want %t", vars["HINSCORE_PATIENT_KEY"] != "", want)
	}
}

// checkUsers checks, with the base's and the dev overlay's values, that the
// service connects to NATS and ClickHouse as users those servers have,
// which may not create or change the streams or the schema.
func checkUsers(t *testing.T, s serviceSpec, vars, devVars map[string]string, natsUsers, chUsers map[string]bool) {
	t.Helper()
	if s.nats {
		checkNATSURL(t, devVars["NATS_URL"], s.name, natsUsers)
		checkNATSURL(t, vars["NATS_URL"], s.name, natsUsers)
		// Its user may not create or change the streams.
		for _, v := range []map[string]string{vars, devVars} {
			setup := bus.StreamSetupFromEnv(service.MapEnv(v))
			if !setup.Check {
				t.Errorf("%s=%q: want check (the nats-streams Job provisions the streams)", bus.EnvStreams, v[bus.EnvStreams])
			}
		}
	}
	if s.clickhouse {
		for which, v := range map[string]map[string]string{"base": vars, "dev": devVars} {
			for _, shard := range strings.Split(v["HINSCORE_CHWRITER_ROLLUP_SHARDS"], ",") {
				if d, err := chstore.ParseDSN(shard); shard != "" && (err != nil || !d.Secure || d.Password == "") {
					t.Errorf("%s HINSCORE_CHWRITER_ROLLUP_SHARDS %s: want a DSN with secure=true and a password (%v)", which, d, err)
				}
			}
			d, err := chstore.ParseDSN(v[chstore.EnvDSN])
			switch {
			case err != nil:
				t.Errorf("%s %s: %v", which, chstore.EnvDSN, err)
			case !chUsers[d.User]:
				t.Errorf("%s %s: user %q is not a ClickHouse user of deploy/clickhouse", which, chstore.EnvDSN, d.User)
			case !d.CheckSchema:
				// The cluster's schema.sql is applied once; the
				// single-server migrations must not run there.
				t.Errorf("%s %s: want ?schema=check", which, chstore.EnvDSN)
			case !d.Secure || d.SkipVerify || d.Password == "" && d.PasswordFile == "":
				// The cluster takes TLS only (config.d/tls.xml) and
				// every user has a password.
				t.Errorf("%s %s: want secure=true, the server verified, and a password", which, chstore.EnvDSN)
			}
		}
	}
}

// checkNATSURL checks that a service connects as its own NATS user.
func checkNATSURL(t *testing.T, raw, user string, users map[string]bool) {
	t.Helper()
	for _, part := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			t.Errorf("NATS_URL %q: %v", part, err)
			continue
		}
		if u.Scheme != "tls" {
			t.Errorf("NATS_URL scheme %q: want tls (the cluster requires TLS)", u.Scheme)
		}
		if u.User.Username() != user || !users[user] {
			t.Errorf("NATS_URL user %q: want %s, a user of deploy/nats/accounts.conf", u.User.Username(), user)
		}
	}
}

// TestListenersAreExposed checks that every network's listener of the
// listening ingests (MLLP; syslog over TLS) is a container port of
// its protocol and a port of the Service.
func TestListenersAreExposed(t *testing.T) {
	_, objs := base(t)
	configMaps, _ := configData(objs)
	cases := []struct {
		service, variable, protocol string
	}{
		{"mllp-ingest", "HINSCORE_MLLP_LISTENERS", "TCP"},
		{"atna-ingest", "HINSCORE_ATNA_LISTENERS", "TCP"},
	}
	for _, tc := range cases {
		t.Run(tc.variable, func(t *testing.T) {
			ls, err := ingest.ParseListeners(configMaps[tc.service+"-config"][tc.variable])
			if err != nil || len(ls) == 0 {
				t.Fatalf("%s: %v listeners, %v", tc.variable, len(ls), err)
			}
			containerPorts := map[string]string{}
			for _, p := range list(container(objs["Deployment/"+tc.service])["ports"]) {
				containerPorts[str(dig(p, "containerPort"))+"/"+protocol(p)] = str(dig(p, "name"))
			}
			servicePorts := map[string]bool{}
			for _, p := range list(dig(objs["Service/"+tc.service], "spec", "ports")) {
				servicePorts[str(dig(p, "targetPort"))+"/"+protocol(p)] = true
			}
			for _, l := range ls {
				host, port, _ := net.SplitHostPort(l.Addr)
				name, ok := containerPorts[port+"/"+tc.protocol]
				switch {
				case host != "0.0.0.0":
					t.Errorf("%s listens on %s: want 0.0.0.0 in a pod", l.Network, l.Addr)
				case !ok:
					t.Errorf("%s: port %s/%s is no containerPort", l.Network, port, tc.protocol)
				case !servicePorts[name+"/"+tc.protocol]:
					t.Errorf("%s: container port %s (%s) is not exposed by the Service", l.Network, name, tc.protocol)
				}
			}
		})
	}
}

// protocol is a port's protocol, TCP unless it says otherwise.
func protocol(port any) string {
	if p := str(dig(port, "protocol")); p != "" {
		return p
	}
	return "TCP"
}

// restricted are the listening ingests: what each network sends them is
// attributed to the network by the listener it arrives on.
var restricted = []struct {
	service string
	tls     func(env *service.Env) (listenerTLS, error)
}{
	{"mllp-ingest", func(env *service.Env) (listenerTLS, error) {
		c, err := mllpingest.ConfigFromEnv(env)
		return listenerTLS{c.Listeners, c.TLSCert, c.TLSKey, c.TLSClientCA, c.TLSClientCAs, c.TLSClientURI}, err
	}},
	{"atna-ingest", func(env *service.Env) (listenerTLS, error) {
		c, err := atnaingest.ConfigFromEnv(env)
		return listenerTLS{c.Listeners, c.TLSCert, c.TLSKey, c.TLSClientCA, c.TLSClientCAs, c.TLSClientURI}, err
	}},
}

// listenerTLS is what a listening ingest's configuration says of its
// listeners' TLS.
type listenerTLS struct {
	listeners           []ingest.Listener
	cert, key, clientCA string
	clientCAs           ingest.NetworkFiles
	clientURI           string
}

// TestListeningIngestsAreRestricted checks what stands between each
// listening ingest (MLLP, syslog) and the internet: its LoadBalancer takes
// only source ranges (never all addresses) and keeps the senders'
// addresses; a NetworkPolicy admits the listeners' ports from those ranges
// only; every listener speaks mutual TLS, its client certificates bound to
// its network (a CA of its own, or a shared one with the URI pattern),
// with its certificate, key and client CAs read from mounted Secrets.
func TestListeningIngestsAreRestricted(t *testing.T) {
	_, objs := base(t)
	configMaps, _ := configData(objs)
	for _, r := range restricted {
		t.Run(r.service, func(t *testing.T) {
			ranges := checkLoadBalancer(t, objs["Service/"+r.service])
			checkNetworkPolicy(t, objs, r.service, ranges)
			cfg, err := r.tls(service.MapEnv(configMaps[r.service+"-config"]))
			if err != nil {
				t.Fatal(err)
			}
			checkListenerTLS(t, objs, r.service, cfg)
		})
	}
}

// checkLoadBalancer checks a listening ingest's Service and returns its
// source ranges.
func checkLoadBalancer(t *testing.T, svc object) []string {
	t.Helper()
	var ranges []string
	for _, r := range list(dig(svc, "spec", "loadBalancerSourceRanges")) {
		ranges = append(ranges, str(r))
	}
	if typ := str(dig(svc, "spec", "type")); typ != "LoadBalancer" && typ != "ClusterIP" && typ != "" {
		t.Errorf("Service type %s: want LoadBalancer with source ranges, or ClusterIP", typ)
	}
	if str(dig(svc, "spec", "type")) == "LoadBalancer" && (len(ranges) == 0 || slices.Contains(ranges, "0.0.0.0/0") || slices.Contains(ranges, "::/0")) {
		t.Errorf("Service is a LoadBalancer open to all (loadBalancerSourceRanges %v)", ranges)
	}
	if p := str(dig(svc, "spec", "externalTrafficPolicy")); p != "Local" {
		t.Errorf("externalTrafficPolicy %q: want Local (the senders' addresses kept)", p)
	}
	return ranges
}

// checkNetworkPolicy checks that the NetworkPolicy of name admits every
// port of its container but the admin port from ranges only.
func checkNetworkPolicy(t *testing.T, objs map[string]object, name string, ranges []string) {
	t.Helper()
	ports := map[string]bool{}
	for _, p := range list(container(objs["Deployment/"+name])["ports"]) {
		if str(dig(p, "name")) != "admin" {
			ports[str(dig(p, "containerPort"))+"/"+protocol(p)] = true
		}
	}
	np := objs["NetworkPolicy/"+name]
	if str(dig(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/name")) != name {
		t.Fatalf("no NetworkPolicy %s selecting its pods", name)
	}
	for _, rule := range list(dig(np, "spec", "ingress")) {
		var from []string
		for _, f := range list(dig(rule, "from")) {
			from = append(from, str(dig(f, "ipBlock", "cidr")))
		}
		for _, p := range list(dig(rule, "ports")) {
			key := str(dig(p, "port")) + "/" + protocol(p)
			if !ports[key] {
				continue
			}
			delete(ports, key)
			if len(from) == 0 || slices.Contains(from, "0.0.0.0/0") || !slices.Equal(from, ranges) {
				t.Errorf("NetworkPolicy admits %s from %v, want the Service's source ranges %v", key, from, ranges)
			}
		}
	}
	for p := range ports {
		t.Errorf("NetworkPolicy does not admit listener port %s", p)
	}
}

// checkListenerTLS checks that every stream listener speaks mutual TLS,
// each network bound to its client certificates (its own CA, or the
// shared bundle with the URI pattern), and that the certificate, its key
// and the CAs are files of mounted Secrets.
func checkListenerTLS(t *testing.T, objs map[string]object, name string, cfg listenerTLS) {
	t.Helper()
	vols := map[string]string{} // volume -> Secret
	for _, v := range list(dig(objs["Deployment/"+name], "spec", "template", "spec", "volumes")) {
		vols[str(dig(v, "name"))] = str(dig(v, "secret", "secretName"))
	}
	mounts := map[string]string{} // mount path -> Secret
	for _, m := range list(container(objs["Deployment/"+name])["volumeMounts"]) {
		mounts[str(dig(m, "mountPath"))] = vols[str(dig(m, "name"))]
	}
	files := map[string]string{"certificate": cfg.cert, "key": cfg.key}
	for _, l := range cfg.listeners {
		ca, own := cfg.clientCAs[l.Network]
		if !own {
			ca = cfg.clientCA
			if cfg.clientURI == "" {
				t.Errorf("%s: shares its client CA and no URI pattern binds certificates to it: another network's would pass", l.Network)
			}
		}
		files["client CA of "+l.Network] = ca
	}
	for what, path := range files {
		if secret := mounts[filepath.Dir(path)]; path == "" || secret == "" {
			t.Errorf("%s %q: want a file of a mounted Secret (mounts %v)", what, path, mounts)
		}
	}
}

// TestScaling checks the autoscalers: ingest and linker scale, the linker
// never beyond its partitions, and every target exists.
func TestScaling(t *testing.T) {
	_, objs := base(t)
	configMaps, _ := configData(objs)
	partitions, err := strconv.Atoi(configMaps["hinscore-partitions"]["HINSCORE_PARTITIONS"])
	if err != nil {
		t.Fatal(err)
	}
	scaled := map[string]bool{}
	for _, o := range objs {
		if o.kind() != "HorizontalPodAutoscaler" {
			continue
		}
		ref := str(dig(o, "spec", "scaleTargetRef", "kind")) + "/" + str(dig(o, "spec", "scaleTargetRef", "name"))
		if _, ok := objs[ref]; !ok {
			t.Errorf("HPA %s scales %s, which does not exist", o.name(), ref)
		}
		scaled[ref] = true
		maxR, _ := dig(o, "spec", "maxReplicas").(int)
		if ref == "StatefulSet/linker" && maxR > partitions {
			t.Errorf("linker HPA maxReplicas %d > HINSCORE_PARTITIONS %d: the extra replicas would own nothing", maxR, partitions)
		}
	}
	for _, want := range []string{"Deployment/mllp-ingest", "Deployment/atna-ingest", "StatefulSet/linker"} {
		if !scaled[want] {
			t.Errorf("%s has no HorizontalPodAutoscaler", want)
		}
	}
}

// TestDevOverlay checks that the dev overlay only refers to what the base has.
func TestDevOverlay(t *testing.T) {
	dir := filepath.Join(deployDir, "k8s", "overlays", "dev")
	k := readKustomization(t, dir)
	if !slices.Equal(k.Resources, []string{"../../base"}) {
		t.Errorf("dev resources %v, want the base", k.Resources)
	}
	baseK, objs := base(t)
	workloads := map[string]bool{}
	for key := range objs {
		kind, name, _ := strings.Cut(key, "/")
		if kind == "Deployment" || kind == "StatefulSet" {
			workloads[name] = true
		}
	}
	for _, r := range k.Replicas {
		if !workloads[r.Name] {
			t.Errorf("replicas: %s is not a workload of the base", r.Name)
		}
	}
	baseImages := map[string]bool{}
	for _, im := range baseK.Images {
		baseImages[im.Name] = true
	}
	for _, im := range k.Images {
		if !baseImages[im.Name] {
			t.Errorf("images: %s is not an image of the base", im.Name)
		}
	}
	for _, p := range k.Patches {
		for _, o := range readYAML(t, filepath.Join(dir, p.Path)) {
			if _, ok := objs[o.kind()+"/"+o.name()]; !ok {
				t.Errorf("patch %s: %s/%s is not in the base", p.Path, o.kind(), o.name())
			}
		}
	}
}

// TestDockerfileBuildsEveryImage checks the one multi-target Dockerfile
// offline: a target per image of the manifests, each built from a cmd that
// exists, statically (CGO off).
func TestDockerfileBuildsEveryImage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^FROM \S+ AS (\S+)$`).FindAllStringSubmatch(text, -1) {
		targets[m[1]] = true
	}
	if !strings.Contains(text, "CGO_ENABLED=0") {
		t.Error("the build does not set CGO_ENABLED=0: binaries would not be static")
	}
	m := regexp.MustCompile(`for s in ([a-z -]+); do`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no build loop over the services")
	}
	built := strings.Fields(m[1])
	for _, s := range built {
		if _, err := os.Stat(filepath.Join(servicesDir, s, "cmd", s)); err != nil {
			t.Errorf("Dockerfile builds %s: %v", s, err)
		}
		if !targets[s] {
			t.Errorf("no target %s", s)
		}
	}
	k, _ := base(t)
	for _, im := range k.Images {
		name := strings.TrimPrefix(im.Name, "hinscore/")
		if !targets[name] || !slices.Contains(built, name) {
			t.Errorf("image %s has no Dockerfile target", im.Name)
		}
	}
}
