package simulator

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ParseTargets reads "northstar=127.0.0.1:2575,lakeshore=http://127.0.0.1:8080/fhir/lakeshore/"
// into a network → address map: host:port for an MLLP listener, an
// http(s) URL for a FHIR network's base.
func ParseTargets(s string) (map[string]string, error) {
	out := map[string]string{}
	err := eachTarget(s, func(name, addr string) error {
		if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
			if _, err := url.Parse(addr); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			out[name] = addr
			return nil
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out[name] = addr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("simulator.ParseTargets: %w", err)
	}
	return out, nil
}

// eachTarget calls fn with each NETWORK=ADDRESS of a comma-separated
// list, refusing an empty part and a network given twice.
func eachTarget(s string, fn func(name, addr string) error) error {
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
		if !ok || name == "" || addr == "" {
			return fmt.Errorf("%q is not NETWORK=ADDRESS", part)
		}
		if seen[name] {
			return fmt.Errorf("network %q given twice", name)
		}
		seen[name] = true
		if err := fn(name, addr); err != nil {
			return err
		}
	}
	return nil
}

// ParseXCATargets reads "carequal-east=127.0.0.1:6514,ehx-central=http://127.0.0.1:8080/fhir/ehx-central/soap":
// a HOST:PORT is the network's syslog-TLS listener (dialled with tlsConfig),
// an http(s) URL where its SOAP copies are posted (with token).
func ParseXCATargets(s string, tlsConfig *tls.Config, token string) (map[string]XCATarget, error) {
	out := map[string]XCATarget{}
	err := eachTarget(s, func(name, addr string) error {
		if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
			if _, err := url.Parse(addr); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			out[name] = XCATarget{SOAP: addr, Token: token}
			return nil
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out[name] = XCATarget{Syslog: addr, TLS: tlsConfig}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("simulator.ParseXCATargets: %w", err)
	}
	return out, nil
}
