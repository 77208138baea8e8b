package simulator

import (
	"fmt"
	"net"
	"strings"
)

// ParseTargets reads "northstar=127.0.0.1:2575,bayview=127.0.0.1:2576"
// into a network → host:port map.
func ParseTargets(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("simulator.ParseTargets: %q is not NETWORK=HOST:PORT", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("simulator.ParseTargets: %s: %w", name, err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("simulator.ParseTargets: network %q given twice", name)
		}
		out[name] = addr
	}
	return out, nil
}
