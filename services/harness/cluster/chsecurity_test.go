package cluster

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// attr is the value of a node's attribute name ("" when it has none).
func (n xmlNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// clickhouseUserNodes returns the users every ClickHouse file defines, by
// name, the last file's definition of a name winning as the server merges
// them.
func clickhouseUserNodes(t *testing.T) map[string]xmlNode {
	t.Helper()
	users := map[string]xmlNode{}
	for _, path := range []string{
		filepath.Join(deployDir, "clickhouse", "users.d", "analyst.xml"),
		filepath.Join(deployDir, "clickhouse", "cluster", "users.d", "hinscore.xml"),
	} {
		if us := readXML(t, path).child("users"); us != nil {
			for _, u := range us.Children {
				users[u.XMLName.Local] = u
			}
		}
	}
	return users
}

// hasPassword reports whether a ClickHouse user of a users file has a
// password: a hash or a plain one, given or taken from the environment.
func hasPassword(u xmlNode) bool {
	for _, tag := range []string{"password_sha256_hex", "password_double_sha1_hex", "password"} {
		if p := u.child(tag); p != nil && p.attr("remove") == "" && (strings.TrimSpace(p.Content) != "" || p.attr("from_env") != "") {
			return true
		}
	}
	return false
}

// loopbackOnly reports whether a user may log in from the server itself only.
func loopbackOnly(u xmlNode) bool {
	nw := u.child("networks")
	if nw == nil {
		return false // the shipped users.xml's networks: everywhere
	}
	for _, c := range nw.Children {
		if c.XMLName.Local != "ip" {
			return false // host, host_regexp: names beyond loopback
		}
		ip, _, err := net.ParseCIDR(strings.TrimSpace(c.Content))
		if err != nil {
			ip = net.ParseIP(strings.TrimSpace(c.Content))
		}
		if ip == nil || !ip.IsLoopback() || strings.HasSuffix(strings.TrimSpace(c.Content), "/0") {
			return false
		}
	}
	return true
}

// TestClickHouseClusterCredentials checks what the cluster's ClickHouse
// servers let in: no user reachable from the network without a password,
// the built-in `default` (shipped with none, open to every network) locked
// to loopback with a password, clients over TLS only (the plain native and
// HTTP ports removed), and the servers querying each other over TLS as a
// user of the cluster with a password.
func TestClickHouseClusterCredentials(t *testing.T) {
	users := clickhouseUserNodes(t)
	def, ok := users["default"]
	if !ok || !hasPassword(def) || !loopbackOnly(def) || def.child("networks").attr("replace") == "" {
		t.Error("the cluster's users.d does not lock the built-in user default: want a password and networks replaced by loopback")
	}
	for name, u := range users {
		if !hasPassword(u) && !loopbackOnly(u) {
			t.Errorf("ClickHouse user %s may log in from the network without a password", name)
		}
	}

	tlsConf := readXML(t, filepath.Join(deployDir, "clickhouse", "cluster", "config.d", "tls.xml"))
	securePort := strings.TrimSpace(tlsConf.child("tcp_port_secure").Content)
	for _, plain := range []string{"tcp_port", "http_port"} {
		if n := tlsConf.child(plain); n == nil || n.attr("remove") == "" {
			t.Errorf("tls.xml keeps the plain %s: want it removed", plain)
		}
	}
	srv := tlsConf.child("openSSL").child("server")
	if securePort == "" || srv == nil || srv.child("certificateFile") == nil || srv.child("privateKeyFile") == nil {
		t.Fatal("tls.xml: want tcp_port_secure with the server's certificate and key")
	}
	// The shipped config.xml names a dhparam.pem nobody generates: 18.16
	// does not open its secure ports while it is missing.
	if dh := srv.child("dhParamsFile"); dh == nil || dh.attr("remove") == "" {
		t.Error("tls.xml: want the shipped dhParamsFile removed")
	}
	if mode := tlsConf.child("openSSL").child("client").child("verificationMode"); mode == nil || strings.TrimSpace(mode.Content) != "strict" {
		t.Error("tls.xml: a server must verify the servers it queries (openSSL client verificationMode strict)")
	}

	rs := readXML(t, filepath.Join(deployDir, "clickhouse", "cluster", "config.d", "remote_servers.xml"))
	for _, shard := range rs.child("remote_servers").child("hinscore").Children {
		for _, r := range shard.Children {
			if r.XMLName.Local != "replica" {
				continue
			}
			host := strings.TrimSpace(r.child("host").Content)
			if r.child("port") == nil || strings.TrimSpace(r.child("port").Content) != securePort || r.child("secure") == nil || strings.TrimSpace(r.child("secure").Content) != "1" {
				t.Errorf("replica %s: want port %s with <secure>1</secure>", host, securePort)
			}
			user := r.child("user")
			if user == nil || r.child("password") == nil || r.child("password").attr("from_env") == "" {
				t.Errorf("replica %s: want a <user> and a <password from_env=...>", host)
				continue
			}
			if u, ok := users[strings.TrimSpace(user.Content)]; !ok || !hasPassword(u) {
				t.Errorf("replica %s: user %q is not a cluster user with a password", host, user.Content)
			}
		}
	}
}
