"""Private, throw-away MariaDB, RabbitMQ, SMTP and MongoDB-wire instances ([servers] in scripts/services.toml), for
the tests (scripts/with-servers, scripts/harness-ctl) and the local stack.

Each instance lives entirely inside its own directory DIR: data, logs, sockets, pid files, ports and passwords.
Nothing is written elsewhere, and the system-wide servers and default ports are never touched. A restart reuses the
port, the credentials and the data, so that clients reconnect to the same address.

Every process started for an instance carries MP3C_HARNESS_DIR=DIR (its epmd: MP3C_HARNESS_EPMD=DIR) in its
environment. stop() finds all processes of an instance by that mark -- Erlang's helpers included (erl_child_setup,
inet_gethost), which sit in sessions of their own -- without guessing by process name.

Tunables (environment): the start timeouts named in the table; MP3C_STOP_TIMEOUT (seconds between TERM and KILL,
30); RABBITMQ_MANAGEMENT_PORT (the management plugin on this port, "auto": a free one; remembered in DIR);
MP3C_RABBITMQ_FAST=0 (no start-up shortcuts: rabbitmq_fast); MP3C_RABBITMQ_SERVER (the start script).
"""
import contextlib, json, os, re, secrets, select, shutil, signal, socket, struct, subprocess, sys, time

from .ports import free_port
from . import table

DIR_MARK, EPMD_MARK = "MP3C_HARNESS_DIR", "MP3C_HARNESS_EPMD"
_children = []  # the servers this process started, reaped once stopped (no zombies)


class ServerError(Exception):
    """A server did not start or stop; what went wrong is on stderr already."""


def spec(name):
    return table.load()["servers"][name]


def say(message, prefix="harness: "):
    print(prefix + message, file=sys.stderr, flush=True)


def fail(message, d=None, logs=(), stop_name=None):
    """Reports a failure with the end of the logs, stops the half-started server, raises ServerError."""
    say(message, "harness: error: ")
    for path in (os.path.join(d, log) for log in logs):
        if os.path.isfile(path) and os.path.getsize(path):
            with open(path, errors="replace") as f:
                sys.stderr.write(f"harness: ---- last lines of {path} ----\n" + "".join(f.readlines()[-25:]))
    if stop_name:
        try:
            stop(stop_name, d)
        except ServerError:
            pass
    raise ServerError(message)


def read(path):
    """The first line of a file, '' if it is missing."""
    try:
        with open(path) as f:
            return f.readline().rstrip("\n")
    except OSError:
        return ""


def write(path, text, private=False):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666), "w") as f:
        f.write(text)
    if private:
        os.chmod(path, 0o600)


def remember(path, make, private=False):
    """The value kept in path; made and kept there the first time (private: mode 0600, always)."""
    value = read(path)
    if not value:
        value = str(make())
        write(path, value + "\n", private)
    if private:
        os.chmod(path, 0o600)
    return value


def remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _now_us():
    return time.time_ns() // 1000


def alive(pid):
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rpartition(") ")[2][:1] not in ("Z", "X")
    except (OSError, ValueError):
        return False


def _has_mark(pid, mark):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return mark in f.read().split(b"\0")
    except OSError:
        return False


def ours(pid, key, d):
    """pid is alive and was started by us for d."""
    return alive(pid) and _has_mark(pid, f"{key}={d}".encode())


def marked(key, d):
    """The live processes marked key=d (a zombie's environment reads empty)."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _has_mark(p, f"{key}={d}".encode())]


def spawn(key, d, log, command, env=None):
    """Starts command in a session of its own (a Ctrl-C on the terminal does not reach it), in d, marked key=d, stdin
    from /dev/null, output appended to d/log. Every other descriptor is closed: a server must not hold a caller's
    pipe open (a test reading harness-ctl's output until EOF would hang until the server exits)."""
    try:
        with open(os.path.join(d, log), "ab") as out:
            p = subprocess.Popen(command, cwd=d, env=dict(os.environ if env is None else env, **{key: d}),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        fail(f"cannot run {command[0]}: {e.strerror}")
    _children.append(p)
    return p.pid


def wait_gone(pids, seconds):
    """Waits up to seconds for these processes to exit, woken by their pidfds; True if they have."""
    until, fds = time.monotonic() + seconds, []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                pass
        while fds and time.monotonic() < until:
            for fd in select.select(fds, [], [], max(0.0, until - time.monotonic()))[0]:
                fds.remove(fd)
                os.close(fd)
    except OSError:  # no pidfds (Linux before 5.3): poll
        while any(map(alive, pids)) and time.monotonic() < until:
            time.sleep(0.1)
    finally:
        for fd in fds:
            os.close(fd)
    return not any(map(alive, pids))


def _kill(pids, sig):
    for pid in pids:
        try:
            os.kill(int(pid), sig)
        except (OSError, ValueError):
            pass


def shutdown(key, d, pids):
    """TERMs the first of pids that is ours (if none is, every process marked key=d), waits up to MP3C_STOP_TIMEOUT
    seconds for every marked process to exit, then KILLs whatever is left. False if some could not be killed."""
    limit = float(table.env("MP3C_STOP_TIMEOUT", "30"))
    first = next((p for p in pids if ours(p, key, d)), None)
    left = marked(key, d)
    _kill([first] if first else left, signal.SIGTERM)
    for sig, seconds in ((signal.SIGKILL, limit), (None, 5)):
        until = time.monotonic() + seconds
        while left and time.monotonic() < until:  # again and again: helpers may appear while the server stops
            wait_gone(left, until - time.monotonic())
            left = marked(key, d)
        if not left:
            return True
        if sig:
            say(f"processes of {d} still running after {seconds:g} s, killing: {' '.join(map(str, left))}")
            _kill(left, sig)
    say(f"could not kill: {' '.join(map(str, left))}", "harness: error: ")
    return False


def _connect(port, timeout):
    return socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)


# Readiness probes (the table's `probe`): probe(dir, port), and the seconds between two tries.

def _ping_mariadb(d, port):
    try:
        return subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={d}/mysqld.sock", "-uroot",
                               "--connect-timeout=1", "ping"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _ping_amqp(d, port):
    try:
        with _connect(port, 1) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            return s.recv(1) == b"\x01"  # a method frame: connection.start
    except (OSError, ValueError):
        return False


def _ping_smtp(d, port):
    try:
        with _connect(port, 2) as s:
            greeting = s.makefile("rb").readline()
            with contextlib.suppress(OSError):
                s.sendall(b"QUIT\r\n")
            return greeting[:4] in (b"220 ", b"220-")
    except (OSError, ValueError):
        return False


def _bson_ok(doc):
    """The top-level field ok of a BSON document equals 1 (walks the elements; False on anything unexpected)."""
    fixed = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}
    number = {0x01: "<d", 0x10: "<i", 0x12: "<q"}
    i = 4
    while i < len(doc) - 1:
        kind, end = doc[i], doc.index(b"\0", i + 1)
        name, i = doc[i + 1:end], end + 1
        if name == b"ok":
            return kind in number and struct.unpack_from(number[kind], doc, i)[0] == 1
        if kind in fixed:
            i += fixed[kind]
        elif kind in (0x02, 0x0D, 0x0E, 0x03, 0x04, 0x05):  # strings, documents, arrays, binary: a length first
            i += struct.unpack_from("<i", doc, i)[0] + {0x03: 0, 0x04: 0, 0x05: 5}.get(kind, 4)
        else:
            return False
    return False


def _ping_mongodb(d, port):
    """An OP_MSG {ping: 1, $db: "admin"} gets a reply to it with ok: 1."""
    body = b"\x10ping\0" + struct.pack("<i", 1) + b"\x02$db\0" + struct.pack("<i", 6) + b"admin\0"
    message = struct.pack("<I", 0) + b"\0" + struct.pack("<i", len(body) + 5) + body + b"\0"
    request = secrets.randbits(31)
    try:
        with _connect(port, 1) as s:
            s.sendall(struct.pack("<iiii", 16 + len(message), request, 0, 2013) + message)
            reply = s.makefile("rb")
            length, _, responds_to, opcode = struct.unpack("<iiii", reply.read(16))
            rest = reply.read(length - 16) if 21 < length < 1 << 20 else b""
            return opcode == 2013 and responds_to == request and rest[4:5] == b"\0" and _bson_ok(rest[5:])
    except (OSError, ValueError, struct.error):
        return False


PROBES = {"mariadb-admin ping": (_ping_mariadb, 0.1), "amqp": (_ping_amqp, 0.1), "smtp 220": (_ping_smtp, 0.05),
          "mongodb ping": (_ping_mongodb, 0.05)}


def ping(name, d):
    return PROBES[spec(name)["probe"]][0](d, read(f"{d}/port"))


# Each server's preparation before its command runs: returns its template values and its environment (None: ours).

def _prepare_mariadb(d, s, galera=None):
    """galera: the directories of a Galera cluster's nodes on this machine, this one among them; the first of them
    founds the cluster at its first start (--wsrep-new-cluster), the others join it and get its data by rsync (SST)."""
    if not (os.path.isdir(f"{d}/data") and os.path.isfile(f"{d}/.installed")):
        shutil.rmtree(f"{d}/data", ignore_errors=True)
        remove(f"{d}/.users-created")
        # timeout(1) without --foreground: on expiry it kills the whole group, the bootstrap mariadbd included.
        with open(f"{d}/install.log", "wb") as log:
            status = subprocess.run(["timeout", "-k", "5", "120", "mariadb-install-db", "--no-defaults",
                                     f"--datadir={d}/data", "--user=root", "--auth-root-authentication-method=normal",
                                     "--skip-test-db", *s["options"]], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT).returncode
        if status:
            fail("mariadb-install-db failed", d, ["install.log"])
        write(f"{d}/.installed", "")
    if not read(f"{d}/password"):
        remove(f"{d}/.users-created")  # a new password: the user is made again
    remember(f"{d}/password", lambda: secrets.token_hex(16), private=True)
    os.makedirs(f"{d}/tmp", exist_ok=True)
    values = {"dir": d, "port": remember(f"{d}/port", lambda: free_port()[0])}
    if galera:  # remembered: a node started again (after a kill) is the same node of the same cluster
        write(f"{d}/galera_nodes", " ".join(os.path.realpath(n) for n in galera) + "\n")
        founder = os.path.realpath(galera[0])
        if founder != d:  # its administrative user is replicated: the founder's password, not one of its own
            write(f"{d}/password", read(f"{founder}/password") + "\n", private=True)
    if read(f"{d}/galera_nodes"):
        values["extra_options"] = galera_options(d, read(f"{d}/galera_nodes").split())
        # The rsync daemon that receives a snapshot (SST) runs as `nobody` when started by root, and nobody may not
        # write the data directory: the nodes' snapshot method (mp3c_rsync, galera_options) is Debian's rsync one
        # with an rsync that keeps root's identity first on its PATH (mariadbd puts /usr/bin first). Test-only.
        os.makedirs(f"{d}/bin", exist_ok=True)
        scripts = {"rsync": '#!/bin/sh\ncase " $* " in *" --daemon "*) exec /usr/bin/rsync --dparam=uid=root '
                            '--dparam=gid=root "$@" ;; esac\nexec /usr/bin/rsync "$@"\n',
                   "wsrep_sst_mp3c_rsync": f'#!/bin/sh\nPATH="{d}/bin:$PATH" exec /usr/bin/wsrep_sst_rsync "$@"\n'}
        for name, text in scripts.items():
            with open(f"{d}/bin/{name}", "w") as f:
                f.write(text)
            os.chmod(f"{d}/bin/{name}", 0o755)
        return values, dict(os.environ, PATH=f"{d}/bin:" + os.environ.get("PATH", "/usr/bin:/bin"))
    return values, None


def galera_ports(d):
    """A Galera node's group communication, incremental (IST) and snapshot (SST) transfer ports, chosen once."""
    if not read(f"{d}/galera_ports"):
        write(f"{d}/galera_ports", " ".join(map(str, free_port(3))) + "\n")
    return read(f"{d}/galera_ports").split()


def galera_options(d, nodes):
    for n in nodes:
        os.makedirs(n, exist_ok=True)
    gcomm, ist, sst = galera_ports(d)
    found = d == nodes[0] and not os.path.exists(f"{d}/.galera-founded")
    write(f"{d}/.galera-founded", "")  # a founder that restarts joins the others, never founds a second cluster
    return ["--wsrep-on=ON", "--wsrep-provider=/usr/lib/galera/libgalera_smm.so", "--wsrep-cluster-name=mp3c",
            "--wsrep-cluster-address=gcomm://" + ",".join(f"127.0.0.1:{galera_ports(n)[0]}" for n in nodes),
            f"--wsrep-node-address=127.0.0.1:{gcomm}", f"--wsrep-node-name=node{nodes.index(d) + 1}",
            f"--wsrep-provider-options=base_port={gcomm};ist.recv_addr=127.0.0.1:{ist};gcache.size=64M",
            f"--wsrep-sst-receive-address=127.0.0.1:{sst}", "--wsrep-sst-method=mp3c_rsync", "--binlog-format=ROW",
            "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2"] + (
                ["--wsrep-new-cluster"] if found else [])


def _mariadb_users(d):
    """Once: the administrative user, with all privileges, from 127.0.0.1, ::1 and the socket."""
    if os.path.exists(f"{d}/.users-created"):
        return
    user, password = spec("mariadb")["user"], read(f"{d}/password")
    sql = "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';\n" + "".join(
        f"CREATE OR REPLACE USER '{user}'@'{host}' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'{host}' WITH GRANT OPTION;\n"
        for host in ("127.0.0.1", "::1", "localhost"))
    try:
        with open(f"{d}/install.log", "ab") as log:
            ok = subprocess.run(["mariadb", "--no-defaults", f"--socket={d}/mysqld.sock", "-uroot", "--batch"],
                                input=sql.encode(), stdout=log, stderr=subprocess.STDOUT, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if not ok:
        fail(f"creating MariaDB user '{user}' failed", d, ["install.log"], "mariadb")
    write(f"{d}/.users-created", "")


def rabbitmq_server():
    return table.env("MP3C_RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server")


def rabbitmq_fast(d, roots):
    """Start-up shortcuts. A stock node spends most of its 5-7 s boot loading (and JIT-compiling) every module of every
    application it can see, because it scans module attributes for feature flags, upgrade steps and boot steps -- and
    it sees all ~70 bundled plugins. So:
    1. DIR/rmq/plugins gets symlinks to just the applications the node needs (rabbit, the requested plugins and their
       dependencies); RABBITMQ_SCRIPTS_DIR points the start script at DIR/rmq/sbin (which makes DIR/rmq its
       RABBITMQ_HOME, hence ERL_LIBS=DIR/rmq/plugins), RABBITMQ_PLUGINS_DIR at DIR/rmq/plugins.
    2. The node starts with RABBITMQ_NODE_ONLY=1 and "-eval <preload> -s rabbit boot", where <preload> loads every
       module of those applications in a background process (code:ensure_modules_loaded, in parallel), overlapping
       with the boot itself.
    Returns those applications, comma-separated, or None when the installation does not look as expected."""
    erl = shutil.which("erl")
    if table.env("MP3C_RABBITMQ_FAST", "1") == "0" or not erl:
        return None
    sbin = os.path.dirname(os.path.realpath(rabbitmq_server()))
    plugins = os.path.join(os.path.dirname(sbin), "plugins")
    otp = os.path.realpath(erl).removesuffix("/bin/erl") + "/lib"
    if not all(map(os.path.isfile, [f"{sbin}/rabbitmq-defaults", f"{sbin}/rabbitmq-env"])) or not (
            os.path.isdir(plugins) and os.path.isdir(otp)):
        return None

    def scan(base):  # {application: (its directory, its .app file)}; the last version wins
        found = {}
        for entry in sorted(os.listdir(base)):
            name, sep, version = entry.rpartition("-")
            name = name if sep and version[:1].isdigit() else entry
            if os.path.isfile(app := os.path.join(base, entry, "ebin", name + ".app")):
                found[name] = (entry, app)
        return found

    try:
        bundled, libs = scan(plugins), scan(otp)
        seen, todo = set(), [(app, "applications") for app in ["rabbit", *roots]]
        while todo:
            app, kind = todo.pop()
            source = bundled.get(app) or libs.get(app)
            if app in seen or (source is None and kind == "optional_applications"):
                continue
            if source is None:
                return None
            seen.add(app)
            with open(source[1], encoding="utf-8", errors="replace") as f:
                text = f.read()
            for key in ("applications", "included_applications", "optional_applications"):
                if m := re.search(r"\{\s*" + key + r"\s*,\s*\[([^\]]*)\]", text):
                    todo += [(a.strip().strip("'"), key) for a in m.group(1).split(",") if a.strip()]
        home = os.path.join(d, "rmq")
        shutil.rmtree(home, ignore_errors=True)
        os.makedirs(f"{home}/sbin")
        os.makedirs(f"{home}/plugins")
        os.symlink(f"{sbin}/rabbitmq-defaults", f"{home}/sbin/rabbitmq-defaults")
        for app in seen & set(bundled):
            os.symlink(os.path.join(plugins, bundled[app][0]), os.path.join(home, "plugins", bundled[app][0]))
    except OSError:
        return None
    apps = ",".join(sorted(seen))
    return apps if re.fullmatch(r"[a-z0-9_,]+", apps) else None


def _prepare_rabbitmq(d, s, management_port=None, cluster_with=None):
    """cluster_with: the directory of the cluster's first node, whose epmd and Erlang cookie this node shares (nodes
    find each other through one epmd and must hold the same cookie); cluster_join() then joins it."""
    for sub in ("home", "log", "mnesia", "conf.d"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
    if cluster_with:
        first = os.path.realpath(cluster_with)
        write(f"{d}/cluster_with", first + "\n")
        write(f"{d}/epmd_port", read(f"{first}/epmd_port") + "\n")
        cookie = f"{d}/home/.erlang.cookie"
        remove(cookie)
        with open(os.open(cookie, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400), "w") as f:
            f.write(read(f"{first}/home/.erlang.cookie"))
    values = {"dir": d, "rabbitmq_server": rabbitmq_server(),
              "nodename": remember(f"{d}/nodename", lambda: f"mp3c-{secrets.token_hex(4)}@localhost")}
    # Ports (the node's, distribution, epmd, and the management UI's): chosen once, together (so that they are
    # distinct), and reused on every restart.
    ports = ("port", "dist_port", "epmd_port")
    values.update((key, read(f"{d}/{key}")) for key in ports)
    management = table.env("RABBITMQ_MANAGEMENT_PORT") if management_port is None else management_port
    auto = management == "auto"
    if auto:
        management = read(f"{d}/management_port")
    if missing := [k for k in ports if not values[k]] + (["auto"] if auto and not management else []):
        values.update(zip(missing, map(str, free_port(len(missing)))))
        management = values.pop("auto", management)
        for key in ports:
            write(f"{d}/{key}", values[key] + "\n")
    # The management setting is remembered: a restart from an environment without RABBITMQ_MANAGEMENT_PORT keeps it.
    if management and not management.isdigit():
        fail(f"bad RABBITMQ_MANAGEMENT_PORT '{management}'")
    if management:
        write(f"{d}/management_port", management + "\n")
    management = read(f"{d}/management_port")
    write(f"{d}/enabled_plugins", "[rabbitmq_management].\n" if management else "[].\n")
    if management:
        write(f"{d}/rabbitmq.conf", f"management.tcp.port = {management}\nmanagement.tcp.ip = 127.0.0.1\n")
    else:
        remove(f"{d}/rabbitmq.conf")  # no configuration file: the node skips cuttlefish
    cookie = f"{d}/home/.erlang.cookie"  # HOME is private
    if not (os.path.isfile(cookie) and os.path.getsize(cookie)):
        remove(cookie)
        with open(os.open(cookie, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400), "w") as f:
            f.write(secrets.token_hex(20).upper())

    if not read(f"{d}/cluster_with") and not ours(read(f"{d}/epmd.pid"), EPMD_MARK, d):
        pid = spawn(EPMD_MARK, d, "log/epmd.log", [table.expand(a, values) for a in s["epmd"]])
        write(f"{d}/epmd.pid", f"{pid}\n")
        until = time.monotonic() + 5
        while True:
            try:
                _connect(values["epmd_port"], 1).close()
                break
            except OSError:
                if not alive(pid) or time.monotonic() > until:
                    fail(f"epmd did not start on port {values['epmd_port']}", d, ["log/epmd.log"], "rabbitmq")
                time.sleep(0.05)

    apps = rabbitmq_fast(d, ["rabbitmq_management"] if management else [])
    values["erl_args"] = "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
    if apps:  # no spaces: the start script word-splits RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS
        values["erl_args"] += (" -eval spawn(fun()->code:ensure_modules_loaded(lists:flatmap(fun(A)->"
                               "application:load(A),(case(application:get_key(A,modules))of{ok,M}->M;_->[]end)end,["
                               + apps + "]))end) -s rabbit boot")
    values.update(fast="1" if apps else "", fast_home=os.path.join(d, "rmq") if apps else "")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}  # the caller's stay out
    return values, dict(env, **table.expand_all(s["env"], values))


def cluster_join(d, first):
    """Joins the RabbitMQ node in d (launched with cluster_with=first, and running) to the cluster of the node in
    first; nothing when it is a member already (a restarted node rejoins by itself)."""
    d, first = os.path.realpath(d), os.path.realpath(first)
    target = read(f"{first}/nodename")
    status, output = rabbitmqctl(d, "cluster_status", "--formatter", "json")
    if status == 0 and target in json.loads(output or "{}").get("disk_nodes", []):
        return
    for step in (["stop_app"], ["join_cluster", target], ["start_app"]):
        status, output = rabbitmqctl(d, *step)
        if status:
            fail(f"rabbitmqctl {' '.join(step)} failed: {output.strip()}", d, spec("rabbitmq")["logs"], "rabbitmq")


def rabbitmqctl(d, *args):
    """Runs rabbitmqctl against the node of the instance in d (its node name, its epmd and the cookie in its home);
    returns (status, output). The caller's RABBITMQ_* and ERL_* variables are not passed on."""
    d = os.path.realpath(d)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    env.update(HOME=f"{d}/home", ERL_EPMD_PORT=read(f"{d}/epmd_port"), RABBITMQ_NODENAME=read(f"{d}/nodename"),
               RABBITMQ_CONF_ENV_FILE=f"{d}/rabbitmq-env.conf")
    try:
        r = subprocess.run([os.path.join(os.path.dirname(rabbitmq_server()), "rabbitmqctl"), "-q", *args], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 1, str(e)
    return r.returncode, r.stdout + r.stderr


def _prepare_smtp(d, s):
    if not os.access(script := os.path.join(table.LIB, "smtp-server.py"), os.R_OK):
        fail(f"missing {script}")
    values = {"dir": d, "lib": table.LIB, "port": remember(f"{d}/port", lambda: free_port()[0]),
              "user": remember(f"{d}/user", lambda: f"mp3c-{secrets.token_hex(4)}"),
              "password": remember(f"{d}/password", lambda: secrets.token_hex(16), private=True),
              # Debian's interpreter: python3-aiosmtpd is installed for it (pyenv's, say, would not see it).
              "python": "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")}
    os.makedirs(f"{d}/maildir", exist_ok=True)
    return values, None


def _prepare_mongodb(d, s):
    """Installs the server first when tools/mongo-wire has not been installed, or not from its current lockfile and
    patch (tools/mongo-wire/install: quick when it has; npm ci, under a lock, when not)."""
    install = os.path.join(table.ROOT, "tools", "mongo-wire", "install")
    try:
        status = subprocess.run([install], stdin=subprocess.DEVNULL, stdout=sys.stderr).returncode
    except OSError as e:
        status = f"cannot run it: {e.strerror}"
    if status:
        fail(f"installing the {s['title']} failed ({install}: {status})")
    node = shutil.which("node")
    if not node:
        fail(f"node is not installed: the {s['title']} runs on Node.js (scripts/install-deps installs it)")
    return {"dir": d, "root": table.ROOT, "node": node, "port": remember(f"{d}/port", lambda: free_port()[0])}, None


# The public functions: name is a [servers] table (mariadb, rabbitmq, smtp, mongodb); d the instance's directory
# (created if need be).

def launch(name, d, **options):
    """Starts the server without waiting for it; nothing if it runs or is starting already (wait() tells)."""
    os.makedirs(d, exist_ok=True)
    d, s, t0 = os.path.realpath(d), spec(name), _now_us()
    if ours(read(f"{d}/server.pid"), DIR_MARK, d):
        return
    stop(name, d)  # leftovers of a half-started or half-stopped server would hold the data and the port
    prepare = {"mariadb": _prepare_mariadb, "rabbitmq": _prepare_rabbitmq, "smtp": _prepare_smtp,
               "mongodb": _prepare_mongodb}[name]
    values, env = prepare(d, s, **options)
    extra = values.pop("extra_options", [])
    pid = spawn(DIR_MARK, d, s["log"],
                [table.expand(a, values) for a in s["command"]] + s.get("options", []) + extra, env)
    write(f"{d}/server.pid", f"{pid}\n")
    write(f"{d}/launched_at", f"{t0}\n")


def wait(name, d):
    """Waits until a launched server answers its probe (polled up to its start timeout)."""
    d, s = os.path.realpath(d), spec(name)
    probe, every = PROBES[s["probe"]]
    port, pid, t0 = read(f"{d}/port"), read(f"{d}/server.pid"), read(f"{d}/launched_at")
    t0 = int(t0) if t0.isdigit() else _now_us()
    limit = float(table.env(s["timeout_variable"], str(s["start_timeout"])))
    until = time.monotonic() + limit
    while not probe(d, port):
        if not alive(pid):
            fail(f"{s['title']} exited during start-up", d, s["logs"], name)
        if time.monotonic() > until:
            fail(f"{s['title']} not ready on 127.0.0.1:{port} after {limit:g} s", d, s["logs"], name)
        time.sleep(every)
    if name == "mariadb":
        _mariadb_users(d)
    say(f"{name} ready on 127.0.0.1:{port} in {(_now_us() - t0) / 1e6:.1f} s")


def start(name, d, **options):
    """launch() and wait(); says so when the server answers already."""
    real = os.path.realpath(d)
    if ours(read(f"{real}/server.pid"), DIR_MARK, real) and ping(name, real):
        return say(f"{name} already running on 127.0.0.1:{read(f'{real}/port')}")
    launch(name, d, **options)
    wait(name, d)


def stop(name, d):
    """Stops the server (TERM, up to MP3C_STOP_TIMEOUT s, then KILL); nothing if it does not run."""
    if not d or not os.path.isdir(d):
        return
    d, s = os.path.realpath(d), spec(name)
    ok = shutdown(DIR_MARK, d, [read(f"{d}/{f}") for f in s["pid_files"]])
    ok = ok and ("epmd" not in s or shutdown(EPMD_MARK, d, [read(f"{d}/epmd.pid")]))
    _children[:] = [p for p in _children if p.poll() is None]
    if not ok:
        raise ServerError(f"could not stop {name} in {d}")
    for f in s["pid_files"] + ["epmd.pid"]:
        remove(f"{d}/{f}")


def exports(name, d):
    """The variables (the table's `exports`) through which a command reaches the server."""
    d, s = os.path.realpath(d), spec(name)
    values = {"dir": d, "port": read(f"{d}/port"), "user": read(f"{d}/user") or s.get("user", ""),
              "password": read(f"{d}/password"), "management_port": read(f"{d}/management_port")}
    if not all(values[k] for k in ("port", "user", "password") if "{%s}" % k in "".join(s["exports"])):
        fail(f"{s['title']} instance in {d} was never started")
    return table.expand_all(s["exports"], values)
