#!/usr/bin/env bash
# Runs a local ClickHouse cluster for hinscore, as deploy/clickhouse/cluster
# describes it, from plain processes on 127.0.0.1 with everything in a temp
# dir: one ZooKeeper (standalone: production runs three, one suffices to
# coordinate locally) and four ClickHouse servers, cluster `hinscore`,
# 2 shards x 2 replicas. Each server gets deploy/clickhouse/cluster's
# config.d (macros from its environment, remote_servers and zookeeper
# rewritten to the local ports, tls.xml with a CA and certificate made at
# start for 127.0.0.1/localhost) and users.d (passwords from the
# environment); then schema.sql is applied through one node (ON CLUSTER DDL
# through ZooKeeper).
#
#   scripts/chcluster.sh start         install when missing, start (or reuse), apply schema.sql, print the DSNs
#   scripts/chcluster.sh stop          stop every server and ZooKeeper by their recorded PIDs
#   scripts/chcluster.sh status        print the DSNs and exit 0 when every server answers, exit 1 otherwise
#   scripts/chcluster.sh dsn [USER]    the DSN of each server (shard 0 replica 0, 0-1, 1-0, 1-1), one a line,
#                                      as USER (writer by default; api, cluster, default)
#   scripts/chcluster.sh env           HINSCORE_TEST_CHCLUSTER=<the four writer DSNs, comma-separated>
#   scripts/chcluster.sh client [ARGS] clickhouse-client as `default` on node 0-0 (TLS)
# Faults, for the tests (NODE is 0-0, 0-1, 1-0 or 1-1):
#   scripts/chcluster.sh kill NODE     kill -9 one server;   start-node NODE / stop-node NODE
#   scripts/chcluster.sh zk-stop       stop ZooKeeper;       zk-start
#
# HINSCORE_CHCLUSTER_HOME picks the directory (default:
# $TMPDIR/hinscore-chcluster-$UID). Passwords come from
# HINSCORE_CHCLUSTER_{WRITER,API,CLUSTER,DEFAULT}_PASSWORD, else are made
# at the first start and kept under the directory (mode 0600); the DSNs name
# a password_file, never the password. Everything but the DSNs goes to
# stderr.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
home=${HINSCORE_CHCLUSTER_HOME:-${TMPDIR:-/tmp}/hinscore-chcluster-$(id -u)}
nodes="0-0 0-1 1-0 1-1"
users="writer api cluster default"
me=chcluster.sh
# shellcheck source=lib/chserver.sh
. "$repo/scripts/lib/chserver.sh"

install_zookeeper() {
	[ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1 && return
	apt_install zookeeper
}

# ---- secrets and TLS ------------------------------------------------------

make_secrets() {
	mkdir -p "$home/secrets"
	chmod 700 "$home/secrets"
	local u var
	for u in $users; do
		[ -s "$home/secrets/$u" ] && continue
		var="HINSCORE_CHCLUSTER_${u^^}_PASSWORD"
		(umask 077; if [ -n "${!var:-}" ]; then printf %s "${!var}"; else openssl rand -hex 16 | tr -d '\n'; fi >"$home/secrets/$u")
	done
}

secret() { cat "$home/secrets/$1"; }
sha() { printf %s "$(secret "$1")" | sha256sum | cut -d' ' -f1; }

# make_tls issues a CA and a server certificate for 127.0.0.1 and
# localhost, the names the servers and the clients dial.
make_tls() {
	local d=$home/tls
	[ -s "$d/tls.crt" ] && return
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=hinscore local cluster CA" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/tls.key" -out "$d/tls.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
		-extfile "$d/ext.cnf" -out "$d/tls.crt" 2>/dev/null
	chmod 600 "$d/ca.key" "$d/tls.key"
}

# client.xml: clickhouse-client over TLS, verifying the servers against the
# CA, as `default` (which only loopback may use).
write_client_config() {
	(umask 077; cat >"$home/client.xml" <<EOF
<config>
    <user>default</user>
    <password>$(secret default)</password>
    <openSSL><client>
        <loadDefaultCAFile>false</loadDefaultCAFile>
        <caConfig>$home/tls/ca.crt</caConfig>
        <verificationMode>strict</verificationMode>
        <invalidCertificateHandler><name>RejectCertificateHandler</name></invalidCertificateHandler>
    </client></openSSL>
</config>
EOF
	)
}

# ---- ZooKeeper ------------------------------------------------------------

# zk_running: the process lives and serves requests ("srvr" names its
# mode only then; "ruok" says imok while a restarted server still loads
# its log, and a ClickHouse server started then exits on the refused
# handshake).
zk_running() {
	[ -f "$home/zk/pid" ] && kill -0 "$(cat "$home/zk/pid")" 2>/dev/null || return 1
	local reply
	reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$home/zk/port")" && printf srvr >&3 && cat <&3) 2>/dev/null) || return 1
	[[ "$reply" == *"Mode: standalone"* ]]
}

zk_start() {
	zk_running && return
	mkdir -p "$home/zk/data"
	[ -f "$home/zk/port" ] || free_ports 1 >"$home/zk/port"
	cat >"$home/zk/zoo.cfg" <<EOF
tickTime=2000
dataDir=$home/zk/data
clientPort=$(cat "$home/zk/port")
clientPortAddress=127.0.0.1
maxClientCnxns=100
admin.enableServer=false
4lw.commands.whitelist=srvr
EOF
	(cd "$home/zk" && exec java -Xmx256m -XX:+UseSerialGC -Dzookeeper.log.dir="$home/zk" \
		-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
		org.apache.zookeeper.server.ZooKeeperServerMain "$home/zk/zoo.cfg" >"$home/zk/out.log" 2>&1) &
	echo $! >"$home/zk/pid"
	for _ in $(seq 1 120); do
		zk_running && { say "ZooKeeper ready on 127.0.0.1:$(cat "$home/zk/port") (pid $(cat "$home/zk/pid"))"; return; }
		kill -0 "$(cat "$home/zk/pid")" 2>/dev/null || { tail -n 20 "$home/zk/out.log" >&2; say "ZooKeeper exited"; exit 1; }
		sleep 0.5
	done
	say "ZooKeeper did not answer within 60s"; exit 1
}

zk_stop() { stop_pid "$home/zk/pid" ZooKeeper; }

# ---- ClickHouse servers ---------------------------------------------------

port_of() { cut -d' ' -f"$2" "$home/node-$1/ports"; } # 1 native TLS, 2 https, 3 interserver, 4 plain (removed)

# node_config NODE writes a server's directory: Debian's config.xml, then
# deploy/clickhouse/cluster's config.d and users.d rewritten to this
# machine, and local.xml, this harness's own (small pools on a shared
# machine, interserver host 127.0.0.1).
node_config() {
	local n=$1 d=$home/node-$1 src=$repo/deploy/clickhouse/cluster
	# The plain ports are removed by tls.xml: port 4 stands for both.
	ch_write_config "$d" "$(port_of "$n" 4)" "$(port_of "$n" 4)" "$(port_of "$n" 3)"
	mkdir -p "$d/etc/config.d"
	cp "$src/config.d/macros.xml" "$d/etc/config.d/"
	local rs=() m
	for m in $nodes; do rs+=(-e "s#<host>clickhouse-$m.clickhouse</host><port>9440</port>#<host>127.0.0.1</host><port>$(port_of "$m" 1)</port>#"); done
	sed "${rs[@]}" "$src/config.d/remote_servers.xml" >"$d/etc/config.d/remote_servers.xml"
	sed -e "/zookeeper-[12]\.zookeeper/d" \
		-e "s#<host>zookeeper-0.zookeeper</host><port>2181</port>#<host>127.0.0.1</host><port>$(cat "$home/zk/port")</port>#" \
		"$src/config.d/zookeeper.xml" >"$d/etc/config.d/zookeeper.xml"
	# ClickHouse 18.16 does not start with ZooKeeper's distributed_ddl and no
	# tcp_port (its DDL worker names itself by that port: "Not found:
	# tcp_port"), so the plain native port stays, on 127.0.0.1 only; the
	# servers still query each other over TLS (remote_servers.xml).
	sed -e "/<tcp_port remove=/d" \
		-e "s#<tcp_port_secure>9440#<tcp_port_secure>$(port_of "$n" 1)#" \
		-e "s#<https_port>8443#<https_port>$(port_of "$n" 2)#" \
		-e "s#/etc/clickhouse-server/tls/#$home/tls/#g" \
		"$src/config.d/tls.xml" >"$d/etc/config.d/tls.xml"
	cat >"$d/etc/config.d/local.xml" <<EOF
<yandex>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>40</max_concurrent_queries>
    <logger><level>information</level></logger>
</yandex>
EOF
	cp "$src/users.d/"*.xml "$d/etc/users.d/"
	cat >"$d/etc/users.d/local.xml" <<EOF
<yandex><profiles><default>
    <background_pool_size>4</background_pool_size>
    <background_schedule_pool_size>8</background_schedule_pool_size>
    <max_threads>2</max_threads>
</default></profiles></yandex>
EOF
}

node_running() {
	local d=$home/node-$1
	[ -f "$d/pid" ] && [ -f "$d/ports" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null || return 1
	client_of "$1" --query 'SELECT 1' >/dev/null 2>&1
}

client_of() {
	local n=$1; shift
	clickhouse-client --config-file="$home/client.xml" --secure --host 127.0.0.1 --port "$(port_of "$n" 1)" "$@"
}

node_start() {
	local n=$1 d=$home/node-$1
	node_running "$n" && return
	[ -f "$d/etc/config.xml" ] || node_config "$n"
	(
		cd "$d"
		export CLICKHOUSE_SHARD=${n%-*} CLICKHOUSE_REPLICA=clickhouse-$n
		export CLICKHOUSE_CLUSTER_PASSWORD; CLICKHOUSE_CLUSTER_PASSWORD=$(secret cluster)
		local u
		for u in $users; do export "CLICKHOUSE_${u^^}_PASSWORD_SHA256=$(sha "$u")"; done
		exec clickhouse-server --config-file="$d/etc/config.xml" >"$d/log/stdout.log" 2>&1
	) &
	echo $! >"$d/pid"
}

node_wait() {
	local n=$1 d=$home/node-$1
	ch_wait "$d/pid" "$d/log" --config-file="$home/client.xml" --secure --host 127.0.0.1 --port "$(port_of "$n" 1)" || exit 1
	say "server $n ready on 127.0.0.1:$(port_of "$n" 1) (pid $(cat "$d/pid"))"
}

node_kill() {
	local d=$home/node-$1
	[ -f "$d/pid" ] || { say "server $1 is not running"; return; }
	kill -9 "$(cat "$d/pid")" 2>/dev/null || true
	rm -f "$d/pid"
	say "killed server $1 (kill -9)"
}

dsn_of() {
	local n=$1 u=${2:-writer}
	echo "clickhouse://$u@127.0.0.1:$(port_of "$n" 1)/hinscore?secure=true&ca_file=$home/tls/ca.crt&password_file=$home/secrets/$u&schema=check"
}

dsns() { local n; for n in $nodes; do dsn_of "$n" "${1:-writer}"; done; }

all_running() { zk_running || return 1; local n; for n in $nodes; do node_running "$n" || return 1; done; }

# apply_schema runs schema.sql through node 0-0; every statement is
# idempotent (IF NOT EXISTS), so a second start applies nothing new.
apply_schema() {
	local applied=$home/schema.sha256 want
	want=$(sha256sum "$repo/deploy/clickhouse/cluster/schema.sql" | cut -d' ' -f1)
	[ -f "$applied" ] && [ "$(cat "$applied")" = "$want" ] && return
	say "applying deploy/clickhouse/cluster/schema.sql through server 0-0"
	client_of 0-0 --multiquery <"$repo/deploy/clickhouse/cluster/schema.sql" >/dev/null
	echo "$want" >"$applied"
}

start() {
	install_clickhouse
	install_zookeeper
	mkdir -p "$home"
	make_secrets
	make_tls
	write_client_config
	zk_start
	local n
	for n in $nodes; do mkdir -p "$home/node-$n"; done
	# Every server's ports first: each one's remote_servers.xml names all.
	local ports; read -r -a ports < <(free_ports 16)
	local i=0
	for n in $nodes; do
		[ -f "$home/node-$n/ports" ] || echo "${ports[@]:i:4}" >"$home/node-$n/ports"
		i=$((i + 4))
	done
	for n in $nodes; do node_start "$n"; done
	for n in $nodes; do node_wait "$n"; done
	apply_schema
	dsns writer
}

stop() {
	local n
	for n in $nodes; do stop_pid "$home/node-$n/pid" "server $n"; done
	zk_stop
}

check_node() { case " $nodes " in *" ${1:-} "*) ;; *) echo "usage: $0 $2 NODE (one of $nodes)" >&2; exit 2 ;; esac; }

case "${1:-}" in
start) start ;;
stop) stop ;;
status) if all_running; then dsns writer; else say "not running"; exit 1; fi ;;
dsn) all_running && dsns "${2:-writer}" ;;
env) all_running && echo "HINSCORE_TEST_CHCLUSTER=$(dsns writer | paste -sd,)" ;;
client) shift; client_of 0-0 "$@" ;;
kill) check_node "${2:-}" kill; node_kill "$2" ;;
stop-node) check_node "${2:-}" stop-node; stop_pid "$home/node-$2/pid" "server $2" ;;
start-node) check_node "${2:-}" start-node; node_start "$2"; node_wait "$2" ;;
zk-stop) zk_stop ;;
zk-start) zk_start ;;
*) echo "usage: $0 start|stop|status|dsn [USER]|env|client [ARGS]|kill NODE|stop-node NODE|start-node NODE|zk-stop|zk-start" >&2; exit 2 ;;
esac
