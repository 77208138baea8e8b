# Functions shared by scripts/clickhouse.sh (one local server) and
# scripts/chcluster.sh (a local cluster): installing Debian's packages,
# free ports, a server's config.xml in its own directory, waiting for a
# server and stopping a process by its recorded PID. Sourced, never run;
# the sourcing script sets `me` (its name, for messages) and `repo`.

say() { echo "${me:-chserver}: $*" >&2; }

# apt_install PACKAGE... installs Debian's packages; apt-get update runs
# once per script run.
apt_install() {
	say "installing Debian's $*"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	if [ -z "${_apt_updated:-}" ]; then
		$sudo apt-get update -qq >&2
		_apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}

install_clickhouse() {
	if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
		return
	fi
	apt_install clickhouse-server clickhouse-client
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N prints N distinct ports nobody listens on, space-separated:
# read -r a b c < <(free_ports 3). They are below the kernel's ephemeral
# range, where no outgoing connection of an earlier server takes one
# before its listener starts.
free_ports() {
	local n=$1 got="" p low=32768
	[ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$low" -gt 15000 ] || low=50000
	for _ in $(seq 1 1000); do
		p=$((10000 + RANDOM % (low - 10000)))
		case " $got " in *" $p "*) continue ;; esac
		port_free "$p" && got="$got $p"
		if [ "$(wc -w <<<"$got")" -eq "$n" ]; then
			echo $got
			return
		fi
	done
	say "no free port found"; exit 1
}

# ch_write_config DIR TCP HTTP INTER writes DIR/etc/config.xml: Debian's
# config.xml with data and logs under DIR, the given ports, listening on
# 127.0.0.1 only, users from DIR/etc/users.xml and DIR/etc/users.d/
# (Debian's users.xml plus deploy/clickhouse/users.d).
ch_write_config() {
	local home=$1 tcp=$2 http=$3 inter=$4
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

# ch_wait PIDFILE LOGDIR CLIENT-ARGS... waits up to 60 s until
# clickhouse-client with CLIENT-ARGS answers SELECT 1; fails, with the last
# log lines, when the process exits first.
ch_wait() {
	local pidfile=$1 logdir=$2; shift 2
	for _ in $(seq 1 120); do
		if clickhouse-client "$@" --query 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
			say "server exited; last log lines:"
			tail -n 20 "$logdir/clickhouse-server.err.log" "$logdir/stdout.log" >&2 2>/dev/null || true
			return 1
		fi
		sleep 0.5
	done
	say "server did not answer within 60s"
	return 1
}

# stop_pid PIDFILE NAME stops the process whose PID the file records
# (TERM, then KILL after 30 s) and removes the file.
stop_pid() {
	local pidfile=$1 name=$2
	[ -f "$pidfile" ] || return 0
	local pid; pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
		say "stopped $name (pid $pid)"
	fi
	rm -f "$pidfile"
}
