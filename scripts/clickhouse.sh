#!/usr/bin/env bash
# Runs a local ClickHouse server for hinscore as a normal process on 127.0.0.1,
# with its config and data in a temp dir.
#
#   scripts/clickhouse.sh start    install when missing, start (or reuse), print the DSN on stdout
#   scripts/clickhouse.sh stop     stop the server by its recorded PID
#   scripts/clickhouse.sh status   print the DSN and exit 0 when it answers, exit 1 otherwise
#   scripts/clickhouse.sh dsn      print the DSN of the running server
#   scripts/clickhouse.sh pid      print the PID of the running server
#
# HINSCORE_CH_HOME picks the directory (default: $TMPDIR/hinscore-clickhouse-$UID).
# Everything but the DSN goes to stderr, so DSN=$(scripts/clickhouse.sh start) works.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
home=${HINSCORE_CH_HOME:-${TMPDIR:-/tmp}/hinscore-clickhouse-$(id -u)}
pidfile=$home/server.pid
portfile=$home/tcp_port

say() { echo "clickhouse.sh: $*" >&2; }

install_if_missing() {
	if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
		return
	fi
	say "installing Debian's clickhouse-server and clickhouse-client"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server clickhouse-client >&2
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		if port_free "$p"; then echo "$p"; return; fi
	done
	say "no free port found"; exit 1
}

running() {
	[ -f "$pidfile" ] && [ -f "$portfile" ] || return 1
	local pid; pid=$(cat "$pidfile")
	kill -0 "$pid" 2>/dev/null || return 1
	clickhouse-client --host 127.0.0.1 --port "$(cat "$portfile")" --query 'SELECT 1' >/dev/null 2>&1
}

dsn() { echo "clickhouse://127.0.0.1:$(cat "$portfile")/hinscore"; }

write_config() {
	local tcp=$1 http=$2 inter=$3
	mkdir -p "$home/data" "$home/log" "$home/etc"
	sed -e "s#/var/lib/clickhouse/#$home/data/#g" \
		-e "s#/var/log/clickhouse-server/#$home/log/#g" \
		-e "s#<tcp_port>[0-9]*</tcp_port>#<tcp_port>$tcp</tcp_port>#" \
		-e "s#<http_port>[0-9]*</http_port>#<http_port>$http</http_port>#" \
		-e "s#<interserver_http_port>[0-9]*</interserver_http_port>#<interserver_http_port>$inter</interserver_http_port>#" \
		-e "/<listen_host>/d" \
		-e "s#<users_config>.*</users_config>#<users_config>$home/etc/users.xml</users_config>#" \
		/etc/clickhouse-server/config.xml >"$home/etc/config.xml.tmp"
	# One listener: IPv4 loopback only.
	sed -i "s#<tcp_port>$tcp</tcp_port>#<tcp_port>$tcp</tcp_port>\n    <listen_host>127.0.0.1</listen_host>#" "$home/etc/config.xml.tmp"
	mv "$home/etc/config.xml.tmp" "$home/etc/config.xml"
	cp /etc/clickhouse-server/users.xml "$home/etc/users.xml"
	# The shipped users (the read-only analyst), merged by the server from users.d/.
	mkdir -p "$home/etc/users.d"
	cp "$repo/deploy/clickhouse/users.d/"*.xml "$home/etc/users.d/"
}

start() {
	install_if_missing
	if running; then
		say "already running (pid $(cat "$pidfile"))"
		dsn
		return
	fi
	# A port found free can be taken by another process before the server
	# binds it: the server then exits with "Address already in use", and
	# another set of ports is tried.
	local attempt
	for attempt in 1 2 3; do
		if launch; then
			dsn
			return
		fi
		grep -q "Address already in use" "$home/log/clickhouse-server.err.log" 2>/dev/null || exit 1
		say "a port was taken meanwhile (attempt $attempt); trying other ports"
		: >"$home/log/clickhouse-server.err.log"
	done
	exit 1
}

# launch starts the server on free ports and waits until it answers;
# it returns 1 when the server exits first.
launch() {
	local tcp http inter
	tcp=$(free_port); http=$(free_port); inter=$(free_port)
	write_config "$tcp" "$http" "$inter"
	echo "$tcp" >"$portfile"
	(cd "$home" && exec clickhouse-server --config-file="$home/etc/config.xml" >"$home/log/stdout.log" 2>&1) &
	echo $! >"$pidfile"
	say "started pid $(cat "$pidfile"), waiting for it to answer on 127.0.0.1:$tcp"
	for _ in $(seq 1 120); do
		if clickhouse-client --host 127.0.0.1 --port "$tcp" --query 'SELECT 1' >/dev/null 2>&1; then
			say "ready ($(clickhouse-client --host 127.0.0.1 --port "$tcp" --query 'SELECT version()'))"
			return 0
		fi
		if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
			say "server exited; last log lines:"
			tail -n 20 "$home/log/clickhouse-server.err.log" "$home/log/stdout.log" >&2 2>/dev/null || true
			rm -f "$pidfile"
			return 1
		fi
		sleep 0.5
	done
	say "server did not answer within 60s"
	exit 1
}

stop() {
	[ -f "$pidfile" ] || { say "not running"; return; }
	local pid; pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
		say "stopped pid $pid"
	fi
	rm -f "$pidfile"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) if running; then dsn; else say "not running"; exit 1; fi ;;
dsn) running && dsn ;;
pid) running && cat "$pidfile" ;;
*) echo "usage: $0 start|stop|status|dsn|pid" >&2; exit 2 ;;
esac
