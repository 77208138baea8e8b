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

me=clickhouse.sh
# shellcheck source=lib/chserver.sh
. "$repo/scripts/lib/chserver.sh"

running() {
	[ -f "$pidfile" ] && [ -f "$portfile" ] || return 1
	local pid; pid=$(cat "$pidfile")
	kill -0 "$pid" 2>/dev/null || return 1
	clickhouse-client --host 127.0.0.1 --port "$(cat "$portfile")" --query 'SELECT 1' >/dev/null 2>&1
}

dsn() { echo "clickhouse://127.0.0.1:$(cat "$portfile")/hinscore"; }

write_config() { ch_write_config "$home" "$@"; }

start() {
	install_clickhouse
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
# it returns 1 when the server exits first or does not answer.
launch() {
	local tcp http inter
	read -r tcp http inter < <(free_ports 3)
	write_config "$tcp" "$http" "$inter"
	echo "$tcp" >"$portfile"
	(cd "$home" && exec clickhouse-server --config-file="$home/etc/config.xml" >"$home/log/stdout.log" 2>&1) &
	echo $! >"$pidfile"
	say "started pid $(cat "$pidfile"), waiting for it to answer on 127.0.0.1:$tcp"
	if ! ch_wait "$pidfile" "$home/log" --host 127.0.0.1 --port "$tcp"; then
		# Exited, or alive but silent for a minute: then it is stopped
		# (it is ours, by its PID) rather than left behind.
		stop_pid "$pidfile" clickhouse-server
		return 1
	fi
	say "ready ($(clickhouse-client --host 127.0.0.1 --port "$tcp" --query 'SELECT version()'))"
}

stop() {
	[ -f "$pidfile" ] || { say "not running"; return; }
	stop_pid "$pidfile" "the server"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) if running; then dsn; else say "not running"; exit 1; fi ;;
dsn) running && dsn ;;
pid) running && cat "$pidfile" ;;
*) echo "usage: $0 start|stop|status|dsn|pid" >&2; exit 2 ;;
esac
