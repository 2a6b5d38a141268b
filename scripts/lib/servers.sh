# shellcheck shell=bash
#
# scripts/lib/servers.sh -- private, throw-away MariaDB, RabbitMQ and SMTP
# instances for tests.  Source this file; it only defines functions and is
# safe to use under `set -euo pipefail` (every function checks its own errors
# and returns non-zero instead of relying on errexit).
#
# Each instance lives entirely inside its own directory DIR (data, logs,
# sockets, pid files, ports, passwords).  Nothing is written elsewhere and
# the system-wide servers / default ports are never touched.
#
# Every process started for an instance carries MP3C_HARNESS_DIR=DIR (our
# epmd: MP3C_HARNESS_EPMD=DIR) in its environment.  The stop functions use
# that mark to find *all* processes of an instance -- including helpers such
# as erl_child_setup and inet_gethost, which Erlang puts into sessions of
# their own -- without guessing by process name.
#
# Public functions
#   free_port [COUNT]    print COUNT (default 1) distinct free TCP ports on
#                        127.0.0.1, one per line
#   mariadb_start DIR    initialise (first time) and start MariaDB, wait until
#                        it answers; reuses port/password/data on restart
#   mariadb_stop DIR     stop it (TERM, bounded wait, KILL); no-op if not running
#   mariadb_env DIR      print `export MP3C_TEST_MYSQL_*=...` lines
#   rabbitmq_launch DIR  start a RabbitMQ node without waiting for it
#   rabbitmq_wait DIR    wait until a launched node answers an AMQP handshake
#   rabbitmq_start DIR   rabbitmq_launch + rabbitmq_wait
#   rabbitmq_stop DIR    stop node and its epmd; no-op if not running
#   rabbitmq_env DIR     print `export MP3C_TEST_AMQP_*=...` lines
#   smtp_launch DIR      start the SMTP server (scripts/lib/smtp-server.py,
#                        aiosmtpd) without waiting for it
#   smtp_wait DIR        wait until a launched server sends its 220 greeting
#   smtp_start DIR       smtp_launch + smtp_wait; reuses port, credentials
#                        and maildir (DIR/maildir) on restart
#   smtp_stop DIR        stop it; no-op if not running
#   smtp_env DIR         print `export MP3C_TEST_SMTP_*=...` lines
#
# Tunables (environment)
#   MP3C_MARIADB_START_TIMEOUT   seconds, default 30
#   MP3C_RABBITMQ_START_TIMEOUT  seconds, default 60
#   MP3C_SMTP_START_TIMEOUT      seconds, default 15
#   MP3C_STOP_TIMEOUT            seconds before KILL, default 30
#   RABBITMQ_MANAGEMENT_PORT     enable rabbitmq_management on this port
#                                ("auto" = pick a free one); remembered in DIR
#   MP3C_RABBITMQ_FAST=0         disable the RabbitMQ start-up shortcuts
#                                (see _rmq_prepare_fast)
#   MP3C_RABBITMQ_SERVER         default /usr/lib/rabbitmq/bin/rabbitmq-server

# ---------------------------------------------------------------------------
# small helpers

_srv_say() { printf 'harness: %s\n' "$*" >&2; }
_srv_err() { printf 'harness: error: %s\n' "$*" >&2; }

# Current time in microseconds (EPOCHREALTIME may use ',' in some locales).
_srv_now_us() { printf '%s\n' "${EPOCHREALTIME/[.,]/}"; }

# _srv_elapsed START_US -> "1.2" (seconds since START_US, one decimal)
_srv_elapsed() {
    local now=${EPOCHREALTIME/[.,]/} d
    d=$(((now - $1 + 50000) / 100000))
    printf '%d.%d' "$((d / 10))" "$((d % 10))"
}

# _srv_before DEADLINE_US: true while the deadline has not passed
_srv_before() { ((${EPOCHREALTIME/[.,]/} < $1)); }

# _srv_read FILE: print the first line of FILE, nothing if it is missing
_srv_read() {
    local v=''
    if [[ -r $1 ]]; then
        IFS= read -r v <"$1" || true
    fi
    printf '%s' "$v"
}

# _srv_dir DIR: print the absolute, symlink-free path of an existing DIR
_srv_dir() {
    [[ -n ${1:-} && -d $1 ]] || return 1
    (cd -- "$1" && pwd -P)
}

# _srv_rand_hex BYTES
_srv_rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

_srv_python() {
    if [[ -x /usr/bin/python3 ]]; then
        /usr/bin/python3 -I -S "$@"
    else
        python3 -I -S "$@"
    fi
}

# _srv_tail FILE...: show the end of log files on stderr
_srv_tail() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        printf 'harness: ---- last lines of %s ----\n' "$f" >&2
        tail -n 25 -- "$f" >&2 || true
    done
}

# _srv_alive PID: process exists and is not a zombie
_srv_alive() {
    local pid=${1:-} stat
    [[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
    IFS= read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}

# _srv_ours PID KEY DIR: PID is alive and was started by us for DIR
_srv_ours() {
    _srv_alive "${1:-}" && grep -qszxF -- "$2=$3" "/proc/$1/environ"
}

# _srv_marked KEY DIR: set _SRV_PIDS to the live processes marked KEY=DIR
_srv_marked() {
    local - f
    set +f
    _SRV_PIDS=()
    while IFS= read -r f; do
        f=${f#/proc/}
        _SRV_PIDS+=("${f%/environ}")
    done < <(grep -lszxF -- "$1=$2" /proc/[0-9]*/environ 2>/dev/null || true)
}

# _srv_spawn KEY DIR LOG CMD...: start CMD in its own session (so a Ctrl-C
# on the terminal does not reach it), cwd DIR, marked KEY=DIR, stdin from
# /dev/null, output appended to LOG.  Sets _SRV_PID to its pid.
_srv_spawn() {
    local - key=$1 dir=$2 log=$3
    shift 3
    # Without job control the subshell is not a process-group leader, so
    # setsid(1) does not fork and $! is the server's own pid.
    set +m
    (
        _srv_close_fds
        cd -- "$dir" && exec env "$key=$dir" setsid "$@"
    ) </dev/null >>"$log" 2>&1 &
    _SRV_PID=$!
}

# Close every descriptor above 2.  A daemon must not keep a caller's pipe
# open (e.g. a test that runs harness-ctl and reads its output until EOF
# would otherwise hang until the server exits).
_srv_close_fds() {
    local - f n
    local -a fds=()
    set +f
    for f in "/proc/$BASHPID/fd/"*; do
        n=${f##*/}
        if [[ $n =~ ^[0-9]+$ ]] && ((n > 2)); then
            fds+=("$n")
        fi
    done
    for n in "${fds[@]}"; do
        exec {n}>&-
    done
}

# _srv_shutdown KEY DIR PID...: TERM the first PID that is ours (or, if none
# is, every process marked KEY=DIR), wait up to MP3C_STOP_TIMEOUT s for all
# marked processes to exit, then KILL whatever is left.
_srv_shutdown() {
    local key=$1 dir=$2 pid sent=0 deadline limit=${MP3C_STOP_TIMEOUT:-30}
    shift 2
    for pid in "$@"; do
        if _srv_ours "$pid" "$key" "$dir"; then
            kill -TERM "$pid" 2>/dev/null || true
            sent=1
            break
        fi
    done
    _srv_marked "$key" "$dir"
    ((${#_SRV_PIDS[@]})) || return 0
    if ((!sent)); then
        kill -TERM "${_SRV_PIDS[@]}" 2>/dev/null || true
    fi
    deadline=$(($(_srv_now_us) + limit * 1000000))
    while ((${#_SRV_PIDS[@]})) && _srv_before "$deadline"; do
        sleep 0.1
        _srv_marked "$key" "$dir"
    done
    ((${#_SRV_PIDS[@]})) || return 0
    _srv_say "processes of $dir still running after ${limit} s, killing: ${_SRV_PIDS[*]}"
    kill -KILL "${_SRV_PIDS[@]}" 2>/dev/null || true
    deadline=$(($(_srv_now_us) + 5000000))
    while ((${#_SRV_PIDS[@]})) && _srv_before "$deadline"; do
        sleep 0.1
        _srv_marked "$key" "$dir"
    done
    if ((${#_SRV_PIDS[@]})); then
        _srv_err "could not kill: ${_SRV_PIDS[*]}"
        return 1
    fi
    return 0
}

# free_port [COUNT]: print COUNT distinct free TCP ports on 127.0.0.1.
# Ports are picked at random *below* the kernel's ephemeral range, so the
# kernel never hands them out as the local end of an outgoing connection
# and a stopped server can get its port back on restart.  All candidates
# are held bound until the last one is found, so they are distinct.
free_port() {
    _srv_python - "${1:-1}" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
try:
    with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
        eph_lo = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    eph_lo = 32768
lo, hi = 20000, eph_lo - 1
avoid = {25672}          # RabbitMQ's default distribution port
rng = random.SystemRandom()
held, ports = [], []
for attempt in range(2000):
    if len(ports) == n:
        break
    p = rng.randint(lo, hi) if hi - lo > 100 and attempt < 1000 else 0
    if p in avoid or p in ports:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', p))
    except OSError:
        s.close()
        continue
    held.append(s)
    ports.append(s.getsockname()[1])
if len(ports) != n:
    sys.exit('free_port: no free port found')
print('\n'.join(map(str, ports)))
PY
}

# ---------------------------------------------------------------------------
# MariaDB

_MARIADB_USER=mp3c

# Options shared by mariadb-install-db and mariadbd (small, fast, test-only).
_mariadb_common_opts() {
    _MARIADB_OPTS=(
        --innodb-buffer-pool-size=64M
        --innodb-log-file-size=16M
        --innodb-log-buffer-size=4M
        --innodb-flush-log-at-trx-commit=2
        --innodb-doublewrite=0
        --character-set-server=utf8mb4
        --collation-server=utf8mb4_general_ci
    )
}

_mariadb_ping() {
    timeout --foreground 5 mariadb-admin --no-defaults --socket="$1/mysqld.sock" -uroot \
        --connect-timeout=1 ping >/dev/null 2>&1
}

mariadb_start() {
    local t0 dir port pw pid deadline sql h
    local limit=${MP3C_MARIADB_START_TIMEOUT:-30}
    t0=$(_srv_now_us)
    [[ -n ${1:-} ]] || { _srv_err "usage: mariadb_start DIR"; return 2; }
    mkdir -p -- "$1" || return 1
    dir=$(_srv_dir "$1") || return 1

    if _srv_ours "$(_srv_read "$dir/server.pid")" MP3C_HARNESS_DIR "$dir" && _mariadb_ping "$dir"; then
        _srv_say "mariadb already running on 127.0.0.1:$(_srv_read "$dir/port")"
        return 0
    fi
    # Leftovers of a half-started or half-stopped server would hold the
    # data directory and the port.
    mariadb_stop "$dir" || return 1

    _mariadb_common_opts
    if [[ ! -d $dir/data || ! -f $dir/.installed ]]; then
        rm -rf -- "$dir/data" "$dir/.users-created"
        # (timeout without --foreground: on expiry it kills the whole group,
        # including the bootstrap mariadbd)
        if ! timeout -k 5 120 mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
            --auth-root-authentication-method=normal --skip-test-db \
            "${_MARIADB_OPTS[@]}" >"$dir/install.log" 2>&1; then
            _srv_err "mariadb-install-db failed"
            _srv_tail "$dir/install.log"
            return 1
        fi
        : >"$dir/.installed"
    fi

    port=$(_srv_read "$dir/port")
    if [[ -z $port ]]; then
        port=$(free_port) || return 1
        printf '%s\n' "$port" >"$dir/port"
    fi
    pw=$(_srv_read "$dir/password")
    if [[ -z $pw ]]; then
        pw=$(_srv_rand_hex 16) || return 1
        (umask 077 && printf '%s\n' "$pw" >"$dir/password") || return 1
        rm -f -- "$dir/.users-created"
    fi
    chmod 600 -- "$dir/password"
    mkdir -p -- "$dir/tmp" || return 1

    _srv_spawn MP3C_HARNESS_DIR "$dir" "$dir/mysqld.out" \
        mariadbd --no-defaults \
        --datadir="$dir/data" \
        --socket="$dir/mysqld.sock" \
        --port="$port" \
        --bind-address=127.0.0.1 \
        --user=root \
        --pid-file="$dir/mysqld.pid" \
        --log-error="$dir/error.log" \
        --tmpdir="$dir/tmp" \
        --skip-name-resolve \
        --max-connections=500 \
        --performance-schema=OFF \
        --skip-log-bin \
        --table-open-cache=400 \
        --thread-cache-size=16 \
        --key-buffer-size=8M \
        --aria-pagecache-buffer-size=16M \
        --innodb-fast-shutdown=1 \
        "${_MARIADB_OPTS[@]}"
    pid=$_SRV_PID
    printf '%s\n' "$pid" >"$dir/server.pid"

    deadline=$(($(_srv_now_us) + limit * 1000000))
    until _mariadb_ping "$dir"; do
        if ! _srv_alive "$pid"; then
            _srv_err "mariadbd exited during start-up"
            _srv_tail "$dir/error.log" "$dir/mysqld.out"
            mariadb_stop "$dir" || true
            return 1
        fi
        if ! _srv_before "$deadline"; then
            _srv_err "mariadb not ready after ${limit} s"
            _srv_tail "$dir/error.log" "$dir/mysqld.out"
            mariadb_stop "$dir" || true
            return 1
        fi
        sleep 0.1
    done

    if [[ ! -f $dir/.users-created ]]; then
        sql="DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';"
        for h in 127.0.0.1 ::1 localhost; do
            sql+="
CREATE OR REPLACE USER '$_MARIADB_USER'@'$h' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON *.* TO '$_MARIADB_USER'@'$h' WITH GRANT OPTION;"
        done
        if ! printf '%s\n' "$sql" | timeout --foreground 30 mariadb --no-defaults \
            --socket="$dir/mysqld.sock" -uroot --batch >>"$dir/install.log" 2>&1; then
            _srv_err "creating MariaDB user '$_MARIADB_USER' failed"
            _srv_tail "$dir/install.log"
            mariadb_stop "$dir" || true
            return 1
        fi
        : >"$dir/.users-created"
    fi
    _srv_say "mariadb ready on 127.0.0.1:$port in $(_srv_elapsed "$t0") s"
}

mariadb_stop() {
    local dir
    dir=$(_srv_dir "${1:-}") || return 0
    _srv_shutdown MP3C_HARNESS_DIR "$dir" \
        "$(_srv_read "$dir/server.pid")" "$(_srv_read "$dir/mysqld.pid")" || return 1
    rm -f -- "$dir/server.pid" "$dir/mysqld.pid"
}

mariadb_env() {
    local dir port pw
    dir=$(_srv_dir "${1:-}") || { _srv_err "no MariaDB instance in '${1:-}'"; return 1; }
    port=$(_srv_read "$dir/port")
    pw=$(_srv_read "$dir/password")
    [[ -n $port && -n $pw ]] || { _srv_err "MariaDB instance in $dir was never started"; return 1; }
    printf 'export %s=%q\n' \
        MP3C_TEST_MYSQL_HOST 127.0.0.1 \
        MP3C_TEST_MYSQL_PORT "$port" \
        MP3C_TEST_MYSQL_USER "$_MARIADB_USER" \
        MP3C_TEST_MYSQL_PASSWORD "$pw" \
        MP3C_TEST_MYSQL_SOCKET "$dir/mysqld.sock"
}

# ---------------------------------------------------------------------------
# RabbitMQ

_rmq_bin() { printf '%s' "${MP3C_RABBITMQ_SERVER:-/usr/lib/rabbitmq/bin/rabbitmq-server}"; }

# AMQP 0-9-1 readiness probe: the broker answers the protocol header with a
# method frame (type 1, connection.start).
_RMQ_AMQP_PROBE='
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    b = s.recv(1)
    s.close()
except OSError:
    sys.exit(1)
sys.exit(0 if b == b"\x01" else 1)
'

# _rmq_prepare_fast DIR APP...: start-up shortcuts.  A stock node spends
# most of its ~5-7 s boot loading (and JIT-compiling) every module of every
# application it can see, because it scans module attributes for feature
# flags, upgrade steps and boot steps -- and it can see all ~70 bundled
# plugins.  So:
#   1. DIR/rmq/plugins gets symlinks to just the apps the node needs (rabbit,
#      the requested plugins and their dependencies); the start script is
#      pointed at it via RABBITMQ_SCRIPTS_DIR (which makes it use
#      DIR/rmq as RABBITMQ_HOME, hence ERL_LIBS=DIR/rmq/plugins) and
#      RABBITMQ_PLUGINS_DIR.
#   2. The node is started with RABBITMQ_NODE_ONLY=1 and an explicit
#      "-eval <preload> -s rabbit boot", where <preload> loads all modules
#      of those apps in a background process using code:ensure_modules_loaded
#      (parallel loading), overlapping with the boot itself.
# On success sets _RMQ_FAST_ENV (env assignments) and _RMQ_FAST_ARGS (erl
# args); returns 1 if the installation does not look as expected.
_rmq_prepare_fast() {
    local dir=$1 sbin home erl apps
    shift
    _RMQ_FAST_ENV=()
    _RMQ_FAST_ARGS=''
    [[ ${MP3C_RABBITMQ_FAST:-1} != 0 ]] || return 1
    sbin=$(readlink -f -- "$(_rmq_bin)") || return 1
    sbin=${sbin%/*}
    home=${sbin%/*}
    [[ -f $sbin/rabbitmq-defaults && -f $sbin/rabbitmq-env && -d $home/plugins ]] || return 1
    erl=$(command -v erl) && erl=$(readlink -f -- "$erl") || return 1
    erl=${erl%/bin/erl}
    [[ -d $erl/lib ]] || return 1
    rm -rf -- "$dir/rmq" && mkdir -p -- "$dir/rmq/sbin" "$dir/rmq/plugins" || return 1
    ln -s -- "$sbin/rabbitmq-defaults" "$dir/rmq/sbin/rabbitmq-defaults" || return 1
    apps=$(_srv_python - "$home/plugins" "$erl/lib" "$dir/rmq/plugins" rabbit "$@" <<'PY'
import os, re, sys
plugins, otp, target = sys.argv[1:4]
roots = sys.argv[4:]

def scan(base):
    found = {}
    for d in sorted(os.listdir(base)):
        name, sep, vsn = d.rpartition('-')
        if not sep or not vsn[:1].isdigit():
            name = d
        app = os.path.join(base, d, 'ebin', name + '.app')
        if os.path.isfile(app):
            found[name] = (d, app)
    return found

def deps(app_file):
    with open(app_file, encoding='utf-8', errors='replace') as f:
        text = f.read()
    out = []
    for key in ('applications', 'included_applications', 'optional_applications'):
        m = re.search(r'\{\s*' + key + r'\s*,\s*\[([^\]]*)\]', text)
        if m:
            out += [(a.strip().strip("'"), key) for a in m.group(1).split(',') if a.strip()]
    return out

pl, ot = scan(plugins), scan(otp)
seen, todo = set(), [(r, 'applications') for r in roots]
while todo:
    app, kind = todo.pop()
    if app in seen:
        continue
    src = pl.get(app) or ot.get(app)
    if src is None:
        if kind == 'optional_applications':
            continue
        sys.exit('missing application: ' + app)
    seen.add(app)
    todo += deps(src[1])
for app in sorted(seen):
    if app in pl:
        os.symlink(os.path.join(plugins, pl[app][0]), os.path.join(target, pl[app][0]))
print(','.join(sorted(seen)))
PY
    ) || return 1
    [[ $apps =~ ^[a-z0-9_,]+$ ]] || return 1
    _RMQ_FAST_ENV=(
        RABBITMQ_SCRIPTS_DIR="$dir/rmq/sbin"
        RABBITMQ_PLUGINS_DIR="$dir/rmq/plugins"
        RABBITMQ_NODE_ONLY=1
    )
    # No spaces allowed: the start script word-splits this variable.
    _RMQ_FAST_ARGS="-eval spawn(fun()->code:ensure_modules_loaded(lists:flatmap(fun(A)->application:load(A),(case(application:get_key(A,modules))of{ok,M}->M;_->[]end)end,[$apps]))end) -s rabbit boot"
}

rabbitmq_launch() {
    local t0 dir node port dist epmd mgmt n i pid deadline erl_args
    local -a missing=() fresh=() envs=() unsets=() roots=()
    t0=$(_srv_now_us)
    [[ -n ${1:-} ]] || { _srv_err "usage: rabbitmq_launch DIR"; return 2; }
    mkdir -p -- "$1" || return 1
    dir=$(_srv_dir "$1") || return 1

    if _srv_ours "$(_srv_read "$dir/server.pid")" MP3C_HARNESS_DIR "$dir"; then
        return 0 # already running (or starting); rabbitmq_wait will tell
    fi
    rabbitmq_stop "$dir" || return 1
    mkdir -p -- "$dir/home" "$dir/log" "$dir/mnesia" "$dir/conf.d" || return 1

    node=$(_srv_read "$dir/nodename")
    if [[ -z $node ]]; then
        node="mp3c-$(_srv_rand_hex 4)@localhost"
        printf '%s\n' "$node" >"$dir/nodename"
    fi

    # Ports: node, distribution, epmd (+ management).  Chosen once, together
    # (so they are distinct), and reused on every restart.
    port=$(_srv_read "$dir/port")
    dist=$(_srv_read "$dir/dist_port")
    epmd=$(_srv_read "$dir/epmd_port")
    mgmt=${RABBITMQ_MANAGEMENT_PORT:-}
    if [[ $mgmt == auto ]]; then
        mgmt=$(_srv_read "$dir/management_port")
        [[ -n $mgmt ]] || missing+=(mgmt)
    fi
    [[ -n $port ]] || missing+=(port)
    [[ -n $dist ]] || missing+=(dist)
    [[ -n $epmd ]] || missing+=(epmd)
    n=${#missing[@]}
    if ((n)); then
        mapfile -t fresh < <(free_port "$n")
        ((${#fresh[@]} == n)) || { _srv_err "could not find free ports"; return 1; }
        for ((i = 0; i < n; i++)); do
            case ${missing[i]} in
            port) port=${fresh[i]} ;;
            dist) dist=${fresh[i]} ;;
            epmd) epmd=${fresh[i]} ;;
            mgmt) mgmt=${fresh[i]} ;;
            esac
        done
        printf '%s\n' "$port" >"$dir/port"
        printf '%s\n' "$dist" >"$dir/dist_port"
        printf '%s\n' "$epmd" >"$dir/epmd_port"
    fi

    # Plugins / config.  The management setting is remembered, so a restart
    # from an environment without RABBITMQ_MANAGEMENT_PORT keeps it.
    if [[ -n $mgmt ]]; then
        [[ $mgmt =~ ^[0-9]+$ ]] || { _srv_err "bad RABBITMQ_MANAGEMENT_PORT '$mgmt'"; return 1; }
        printf '%s\n' "$mgmt" >"$dir/management_port"
    else
        mgmt=$(_srv_read "$dir/management_port")
    fi
    if [[ -n $mgmt ]]; then
        roots=(rabbitmq_management)
        printf '[rabbitmq_management].\n' >"$dir/enabled_plugins"
        printf 'management.tcp.port = %s\nmanagement.tcp.ip = 127.0.0.1\n' "$mgmt" >"$dir/rabbitmq.conf"
    else
        printf '[].\n' >"$dir/enabled_plugins"
        rm -f -- "$dir/rabbitmq.conf" # no config file: skips cuttlefish
    fi

    # Erlang cookie (HOME is private).
    if [[ ! -s $dir/home/.erlang.cookie ]]; then
        rm -f -- "$dir/home/.erlang.cookie"
        (umask 277 && _srv_rand_hex 20 | tr 'a-f' 'A-F' >"$dir/home/.erlang.cookie") || return 1
    fi

    # Our own epmd on our own port.
    if ! _srv_ours "$(_srv_read "$dir/epmd.pid")" MP3C_HARNESS_EPMD "$dir"; then
        _srv_spawn MP3C_HARNESS_EPMD "$dir" "$dir/log/epmd.log" epmd -port "$epmd" -address 127.0.0.1
        printf '%s\n' "$_SRV_PID" >"$dir/epmd.pid"
        deadline=$(($(_srv_now_us) + 5000000))
        until (exec 3<>"/dev/tcp/127.0.0.1/$epmd") 2>/dev/null; do
            if ! _srv_alive "$_SRV_PID" || ! _srv_before "$deadline"; then
                _srv_err "epmd did not start on port $epmd"
                _srv_tail "$dir/log/epmd.log"
                rabbitmq_stop "$dir" || true
                return 1
            fi
            sleep 0.05
        done
    fi

    # Do not let the caller's RABBITMQ_* / ERL_* variables leak into the node.
    while IFS= read -r i; do
        if [[ $i == RABBITMQ_* || $i == ERL_* ]]; then
            unsets+=(-u "$i")
        fi
    done < <(compgen -e)

    erl_args="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
    if _rmq_prepare_fast "$dir" "${roots[@]}"; then
        envs+=("${_RMQ_FAST_ENV[@]}")
        erl_args+=" $_RMQ_FAST_ARGS"
    fi
    envs+=(
        HOME="$dir/home"
        ERL_EPMD_PORT="$epmd"
        ERL_CRASH_DUMP="$dir/log/erl_crash.dump"
        RABBITMQ_NODENAME="$node"
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$port"
        RABBITMQ_DIST_PORT="$dist"
        RABBITMQ_MNESIA_BASE="$dir/mnesia"
        RABBITMQ_LOG_BASE="$dir/log"
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
        RABBITMQ_CONFIG_FILES="$dir/conf.d"
        RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
        RABBITMQ_PLUGINS_EXPAND_DIR="$dir/plugins-expand"
        RABBITMQ_FEATURE_FLAGS_FILE="$dir/mnesia/feature_flags"
        RABBITMQ_QUORUM_DIR="$dir/mnesia/quorum"
        RABBITMQ_STREAM_DIR="$dir/mnesia/stream"
        RABBITMQ_MOTD_FILE="$dir/motd"
        RABBITMQ_PID_FILE="$dir/rabbit.pid"
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$erl_args"
    )

    # /usr/lib/rabbitmq/bin/rabbitmq-server runs the node in the foreground
    # (the /usr/sbin wrapper would switch to the rabbitmq user as root).
    _srv_spawn MP3C_HARNESS_DIR "$dir" "$dir/log/console.log" \
        env "${unsets[@]}" "${envs[@]}" "$(_rmq_bin)"
    pid=$_SRV_PID
    printf '%s\n' "$pid" >"$dir/server.pid"
    printf '%s\n' "$t0" >"$dir/launched_at"
}

rabbitmq_wait() {
    local dir port pid t0 deadline limit=${MP3C_RABBITMQ_START_TIMEOUT:-60}
    dir=$(_srv_dir "${1:-}") || { _srv_err "no RabbitMQ instance in '${1:-}'"; return 1; }
    port=$(_srv_read "$dir/port")
    pid=$(_srv_read "$dir/server.pid")
    t0=$(_srv_read "$dir/launched_at")
    [[ $t0 =~ ^[0-9]+$ ]] || t0=$(_srv_now_us)
    deadline=$(($(_srv_now_us) + limit * 1000000))
    until _srv_python -c "$_RMQ_AMQP_PROBE" "$port"; do
        if ! _srv_alive "$pid"; then
            _srv_err "RabbitMQ node exited during start-up"
            _srv_tail "$dir/log/console.log"
            rabbitmq_stop "$dir" || true
            return 1
        fi
        if ! _srv_before "$deadline"; then
            _srv_err "RabbitMQ not ready after ${limit} s"
            _srv_tail "$dir/log/console.log"
            rabbitmq_stop "$dir" || true
            return 1
        fi
        sleep 0.1
    done
    _srv_say "rabbitmq ready on 127.0.0.1:$port in $(_srv_elapsed "$t0") s"
}

rabbitmq_start() {
    local dir port
    [[ -n ${1:-} ]] || { _srv_err "usage: rabbitmq_start DIR"; return 2; }
    if dir=$(_srv_dir "$1") && _srv_ours "$(_srv_read "$dir/server.pid")" MP3C_HARNESS_DIR "$dir"; then
        port=$(_srv_read "$dir/port")
        if _srv_python -c "$_RMQ_AMQP_PROBE" "$port"; then
            _srv_say "rabbitmq already running on 127.0.0.1:$port"
            return 0
        fi
    fi
    rabbitmq_launch "$1" && rabbitmq_wait "$1"
}

rabbitmq_stop() {
    local dir
    dir=$(_srv_dir "${1:-}") || return 0
    # The start script forwards TERM to the VM, which then shuts RabbitMQ
    # down cleanly; erl_child_setup/inet_gethost exit with the VM.
    _srv_shutdown MP3C_HARNESS_DIR "$dir" \
        "$(_srv_read "$dir/server.pid")" "$(_srv_read "$dir/rabbit.pid")" || return 1
    _srv_shutdown MP3C_HARNESS_EPMD "$dir" "$(_srv_read "$dir/epmd.pid")" || return 1
    rm -f -- "$dir/server.pid" "$dir/rabbit.pid" "$dir/epmd.pid"
}

rabbitmq_env() {
    local dir port mgmt
    dir=$(_srv_dir "${1:-}") || { _srv_err "no RabbitMQ instance in '${1:-}'"; return 1; }
    port=$(_srv_read "$dir/port")
    [[ -n $port ]] || { _srv_err "RabbitMQ instance in $dir was never started"; return 1; }
    printf 'export %s=%q\n' \
        MP3C_TEST_AMQP_URL "amqp://guest:guest@127.0.0.1:$port/" \
        MP3C_TEST_AMQP_HOST 127.0.0.1 \
        MP3C_TEST_AMQP_PORT "$port"
    mgmt=$(_srv_read "$dir/management_port")
    if [[ -n $mgmt ]]; then
        printf 'export %s=%q\n' MP3C_TEST_AMQP_MANAGEMENT_PORT "$mgmt"
    fi
}

# ---------------------------------------------------------------------------
# SMTP (scripts/lib/smtp-server.py on aiosmtpd)

# Debian's interpreter: python3-aiosmtpd is installed for it (a python3 found
# first on PATH, e.g. pyenv's, would not see it).  -I: ignore PYTHON* and the
# user's site-packages, but keep dist-packages (so no -S, unlike _srv_python).
_smtp_python() {
    if [[ -x /usr/bin/python3 ]]; then
        printf '%s' /usr/bin/python3
    else
        command -v python3
    fi
}

# _smtp_script: absolute path of smtp-server.py (next to this file)
_smtp_script() {
    local lib=.
    [[ ${BASH_SOURCE[0]} == */* ]] && lib=${BASH_SOURCE[0]%/*}
    lib=$(cd -- "$lib" && pwd -P) || return 1
    printf '%s/smtp-server.py' "$lib"
}

# _smtp_ping PORT: a connection to 127.0.0.1:PORT is answered with a 220
# greeting within 2 s.
_smtp_ping() {
    [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
    (
        trap '' PIPE
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        line=''
        IFS= read -r -t 2 line <&3 || exit 1
        rc=1
        [[ $line == 220[\ -]* ]] && rc=0
        printf 'QUIT\r\n' >&3 || true
        exit "$rc"
    ) 2>/dev/null
}

smtp_launch() {
    local t0 dir port user pw script
    t0=$(_srv_now_us)
    [[ -n ${1:-} ]] || { _srv_err "usage: smtp_launch DIR"; return 2; }
    mkdir -p -- "$1" || return 1
    dir=$(_srv_dir "$1") || return 1

    if _srv_ours "$(_srv_read "$dir/server.pid")" MP3C_HARNESS_DIR "$dir"; then
        return 0 # already running (or starting); smtp_wait will tell
    fi
    smtp_stop "$dir" || return 1

    script=$(_smtp_script) || return 1
    [[ -r $script ]] || { _srv_err "missing $script"; return 1; }
    port=$(_srv_read "$dir/port")
    if [[ -z $port ]]; then
        port=$(free_port) || return 1
        printf '%s\n' "$port" >"$dir/port"
    fi
    user=$(_srv_read "$dir/user")
    if [[ -z $user ]]; then
        user="mp3c-$(_srv_rand_hex 4)" || return 1
        printf '%s\n' "$user" >"$dir/user"
    fi
    pw=$(_srv_read "$dir/password")
    if [[ -z $pw ]]; then
        pw=$(_srv_rand_hex 16) || return 1
        (umask 077 && printf '%s\n' "$pw" >"$dir/password") || return 1
    fi
    chmod 600 -- "$dir/password"
    mkdir -p -- "$dir/maildir" || return 1

    # The password goes by file, not on the command line (visible in ps).
    _srv_spawn MP3C_HARNESS_DIR "$dir" "$dir/smtp.log" \
        "$(_smtp_python)" -I "$script" \
        --host 127.0.0.1 --port "$port" --maildir "$dir/maildir" \
        --auth-user "$user" --auth-password-file "$dir/password"
    printf '%s\n' "$_SRV_PID" >"$dir/server.pid"
    printf '%s\n' "$t0" >"$dir/launched_at"
}

smtp_wait() {
    local dir port pid t0 deadline limit=${MP3C_SMTP_START_TIMEOUT:-15}
    dir=$(_srv_dir "${1:-}") || { _srv_err "no SMTP instance in '${1:-}'"; return 1; }
    port=$(_srv_read "$dir/port")
    pid=$(_srv_read "$dir/server.pid")
    t0=$(_srv_read "$dir/launched_at")
    [[ $t0 =~ ^[0-9]+$ ]] || t0=$(_srv_now_us)
    deadline=$(($(_srv_now_us) + limit * 1000000))
    until _smtp_ping "$port"; do
        if ! _srv_alive "$pid"; then
            _srv_err "SMTP server exited during start-up"
            _srv_tail "$dir/smtp.log"
            smtp_stop "$dir" || true
            return 1
        fi
        if ! _srv_before "$deadline"; then
            _srv_err "SMTP server not answering with 220 on 127.0.0.1:$port after ${limit} s"
            _srv_tail "$dir/smtp.log"
            smtp_stop "$dir" || true
            return 1
        fi
        sleep 0.05
    done
    _srv_say "smtp ready on 127.0.0.1:$port in $(_srv_elapsed "$t0") s"
}

smtp_start() {
    local dir port
    [[ -n ${1:-} ]] || { _srv_err "usage: smtp_start DIR"; return 2; }
    if dir=$(_srv_dir "$1") && _srv_ours "$(_srv_read "$dir/server.pid")" MP3C_HARNESS_DIR "$dir"; then
        port=$(_srv_read "$dir/port")
        if _smtp_ping "$port"; then
            _srv_say "smtp already running on 127.0.0.1:$port"
            return 0
        fi
    fi
    smtp_launch "$1" && smtp_wait "$1"
}

smtp_stop() {
    local dir
    dir=$(_srv_dir "${1:-}") || return 0
    _srv_shutdown MP3C_HARNESS_DIR "$dir" "$(_srv_read "$dir/server.pid")" || return 1
    rm -f -- "$dir/server.pid"
}

smtp_env() {
    local dir port user pw
    dir=$(_srv_dir "${1:-}") || { _srv_err "no SMTP instance in '${1:-}'"; return 1; }
    port=$(_srv_read "$dir/port")
    user=$(_srv_read "$dir/user")
    pw=$(_srv_read "$dir/password")
    [[ -n $port && -n $user && -n $pw ]] || { _srv_err "SMTP instance in $dir was never started"; return 1; }
    printf 'export %s=%q\n' \
        MP3C_TEST_SMTP_HOST 127.0.0.1 \
        MP3C_TEST_SMTP_PORT "$port" \
        MP3C_TEST_SMTP_MAILDIR "$dir/maildir" \
        MP3C_TEST_SMTP_USER "$user" \
        MP3C_TEST_SMTP_PASSWORD "$pw"
}
