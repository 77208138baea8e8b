package cluster

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	atnaingest "github.com/hinscore/hinscore/services/atna-ingest"
	fhiringest "github.com/hinscore/hinscore/services/fhir-ingest"
	"github.com/hinscore/hinscore/services/lib/service"
	mllpingest "github.com/hinscore/hinscore/services/mllp-ingest"
)

// productionChecked are the services whose configuration production
// refuses things of, each loaded as its binary loads it.
var productionChecked = map[string]func(env *service.Env) (any, error){
	"mllp-ingest": func(env *service.Env) (any, error) { c, err := mllpingest.ConfigFromEnv(env); return &c, err },
	"atna-ingest": func(env *service.Env) (any, error) { c, err := atnaingest.ConfigFromEnv(env); return &c, err },
	"fhir-ingest": func(env *service.Env) (any, error) { c, err := fhiringest.ConfigFromEnv(env); return &c, err },
}

// operatorSecrets are the base's Secrets with their placeholders replaced
// as an operator replaces them: keys of the deployment's own.
func operatorSecrets(secrets map[string]map[string]string) map[string]map[string]string {
	values := map[string]string{
		"HINSCORE_PATIENT_KEY": "a patient key of this deployment's own",
		"HINSCORE_RAW_KEYS":    "k1:" + strings.Repeat("3c", 32),
		"HINSCORE_FHIR_TOKENS": "northstar=" + service.HashToken("a token of northstar's"),
	}
	out := map[string]map[string]string{}
	for name, data := range secrets {
		out[name] = map[string]string{}
		for k, v := range data {
			if r, ok := values[k]; ok && v == "REPLACE" {
				v = r
			}
			out[name][k] = strings.ReplaceAll(v, "REPLACE", "secret")
		}
	}
	return out
}

// TestBaseRunsInProduction: the base says production, and each listening
// or receiving ingest's configuration in it, its Secrets filled in by the
// operator, passes the production refusals (service.CheckProduction): TLS
// with client certificates bound to each network on every MLLP and syslog
// listener, no UDP, no development key. Taking a network's own CA away
// makes it fail, so the check has teeth. The dev overlay says development.
func TestBaseRunsInProduction(t *testing.T) {
	_, objs := base(t)
	configMaps, secrets := configData(objs)
	if got := configMaps["hinscore-common"][service.EnvEnvironment]; got != service.Production {
		t.Errorf("hinscore-common %s=%q, want %s", service.EnvEnvironment, got, service.Production)
	}
	secrets = operatorSecrets(secrets)
	for _, name := range slices.Sorted(maps.Keys(productionChecked)) {
		t.Run(name, func(t *testing.T) {
			vars, problems := env(t, container(objs["Deployment/"+name]), configMaps, secrets, name+"-0")
			for _, p := range problems {
				t.Error(p)
			}
			envOf := service.MapEnv(vars)
			cfg, err := productionChecked[name](envOf)
			if err != nil {
				t.Fatal(err)
			}
			if err := service.CheckProduction(envOf, cfg); err != nil {
				t.Errorf("the base is refused in production: %v", err)
			}
		})
	}
	mllp := maps.Clone(configMaps["mllp-ingest-config"])
	mllp["HINSCORE_MLLP_TLS_CLIENT_CAS"] = strings.Join(strings.Split(mllp["HINSCORE_MLLP_TLS_CLIENT_CAS"], ",")[1:], ",")
	maps.Copy(mllp, secrets["mllp-ingest-secrets"])
	cfg, err := productionChecked["mllp-ingest"](service.MapEnv(mllp))
	if err != nil {
		t.Fatal(err)
	}
	if err := service.CheckProduction(service.MapEnv(mllp), cfg); err == nil || !strings.Contains(err.Error(), "no client CA") {
		t.Errorf("a network without its CA: %v, want a refusal", err)
	}

	dev := readKustomization(t, filepath.Join(deployDir, "k8s", "overlays", "dev"))
	devCM, devSecrets := configData(objs)
	devOverlay(t, dev, devCM, devSecrets)
	if got := devCM["hinscore-common"][service.EnvEnvironment]; got != service.Development {
		t.Errorf("dev overlay %s=%q, want %s (its keys are public)", service.EnvEnvironment, got, service.Development)
	}
}

// TestHTTPEndpointsHaveTLS: the FHIR ingest and the api, which take bearer
// tokens and return what identifies patients, are reached from outside
// only through an Ingress that serves HTTPS (a TLS certificate for every
// host it routes, HTTP redirected), their Services internal, and a
// NetworkPolicy admits their HTTP port from the ingress controller's
// namespace only.
func TestHTTPEndpointsHaveTLS(t *testing.T) {
	_, objs := base(t)
	for _, name := range []string{"fhir-ingest", "api"} {
		t.Run(name, func(t *testing.T) {
			svc := objs["Service/"+name]
			if typ := str(dig(svc, "spec", "type")); typ != "" && typ != "ClusterIP" {
				t.Errorf("Service type %s: want ClusterIP (reached through the Ingress)", typ)
			}
			ing, ok := objs["Ingress/"+name]
			if !ok {
				t.Fatalf("no Ingress %s", name)
			}
			checkIngressTLS(t, ing, name)
			checkHTTPPolicy(t, objs, name)
		})
	}
	// The api's login cookies are Secure only when it knows its users
	// reach it over https: its public URL is the Ingress's host.
	url := str(dig(objs["ConfigMap/api-config"], "data", "HINSCORE_API_PUBLIC_URL"))
	host := str(dig(list(dig(objs["Ingress/api"], "spec", "rules"))[0], "host"))
	if url != "https://"+host {
		t.Errorf("api's HINSCORE_API_PUBLIC_URL %q, want https://%s (its Ingress)", url, host)
	}
}

// checkIngressTLS checks that ing routes only to the Service name's http
// port, only hosts it has a TLS certificate for, and redirects HTTP.
func checkIngressTLS(t *testing.T, ing object, name string) {
	t.Helper()
	secured := map[string]bool{}
	for _, tl := range list(dig(ing, "spec", "tls")) {
		if str(dig(tl, "secretName")) == "" {
			t.Errorf("TLS entry without a secretName")
		}
		for _, h := range list(dig(tl, "hosts")) {
			secured[str(h)] = true
		}
	}
	rules := list(dig(ing, "spec", "rules"))
	if len(rules) == 0 {
		t.Error("no rule")
	}
	for _, r := range rules {
		host := str(dig(r, "host"))
		if host == "" || !secured[host] {
			t.Errorf("rule for host %q has no TLS certificate", host)
		}
		for _, p := range list(dig(r, "http", "paths")) {
			if b := str(dig(p, "backend", "service", "name")); b != name || str(dig(p, "backend", "service", "port", "name")) != "http" {
				t.Errorf("path %s goes to %s, want %s's http port", str(dig(p, "path")), b, name)
			}
		}
	}
	if str(dig(ing, "metadata", "annotations", "nginx.ingress.kubernetes.io/force-ssl-redirect")) != "true" {
		t.Error("HTTP is not redirected to HTTPS")
	}
}

// checkHTTPPolicy checks that the NetworkPolicy of name admits its http
// container port only from a namespace (the ingress controller's).
func checkHTTPPolicy(t *testing.T, objs map[string]object, name string) {
	t.Helper()
	var httpPort string
	for _, p := range list(container(objs["Deployment/"+name])["ports"]) {
		if str(dig(p, "name")) == "http" {
			httpPort = str(dig(p, "containerPort"))
		}
	}
	np, ok := objs["NetworkPolicy/"+name]
	if !ok || str(dig(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/name")) != name {
		t.Fatalf("no NetworkPolicy %s selecting its pods", name)
	}
	admitted := false
	for _, rule := range list(dig(np, "spec", "ingress")) {
		for _, p := range list(dig(rule, "ports")) {
			if str(dig(p, "port")) != httpPort {
				continue
			}
			admitted = true
			from := list(dig(rule, "from"))
			if len(from) == 0 {
				t.Errorf("port %s admitted from everywhere, want the ingress controller's namespace", httpPort)
			}
			for _, f := range from {
				if dig(f, "namespaceSelector", "matchLabels") == nil || dig(f, "ipBlock") != nil {
					t.Errorf("port %s admitted from %v, want the ingress controller's namespace only", httpPort, f)
				}
			}
		}
	}
	if !admitted {
		t.Errorf("port %s is not admitted at all", httpPort)
	}
}
