"""scripts/stack up|start|stop|status|logs: the system on one machine (the commands are described in scripts/stack)."""
import contextlib, fcntl, glob, io, json, os, secrets, select, signal, socket, subprocess, sys

from . import servers, table
from .ports import free_port
from .supervisor import Interrupted, Service, Supervisor, http_ok, say

ROOT = table.ROOT
USAGE = "usage: scripts/stack up|start|stop|status|logs"
READY_FD = "MP3C_STACK_READY_FD"  # `start` learns through this pipe that `up` has printed the banner
RUNNING = "is running (Ctrl-C stops it)"


class Die(Exception):
    pass


def main(argv):
    commands = {"up": up, "start": start, "stop": stop, "status": status, "logs": logs}
    command = commands.get(argv[0] if argv else "up")
    if command is None:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        return command(table.stack_values())
    except Die as e:
        red(e)
        return 1
    except KeyboardInterrupt:
        return 130


def red(message):
    sys.stderr.write(f"\033[1;31mstack: {message}\033[0m\n")


def stack_pid(var):
    """The pid of a running stack (background or foreground), or None."""
    pid = servers.read(os.path.join(var, "stack.pid"))
    if not pid.isdigit() or int(pid) == 0:
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, someone else's
        pass
    return int(pid)


def port_in_use(port):
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def run(command, **options):
    """Runs a build step; its failure ends the stack with its status."""
    try:
        status = subprocess.run(command, cwd=ROOT, **options).returncode
    except FileNotFoundError:
        raise Die(f"{command[0]} not found")
    if status:
        sys.exit(status)


def build():
    run([f"{ROOT}/scripts/install-deps"])
    if table.env("MP3C_STACK_BUILD", "1") != "0":
        say("building the release preset")
        run(["cmake", "--preset", "release"], stdout=subprocess.DEVNULL)
        run(["cmake", "--build", "--preset", "release", "--target", "auth", "gateway", "converter", "notification",
             "mp3converter-admin", "mp3conv"])
    maildev = f"{ROOT}/tools/maildev"
    if not table.env("SMTP_HOST") and not os.access(f"{maildev}/node_modules/.bin/maildev", os.X_OK):
        # Under a lock: two stacks starting at once (the end-to-end and browser tests) must not both run npm ci.
        with open(f"{maildev}/.install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.access(f"{maildev}/node_modules/.bin/maildev", os.X_OK):
                say("installing maildev (npm ci, versions pinned in tools/maildev/package-lock.json)")
                run(["npm", "ci", "--prefix", maildev, "--no-audit", "--no-fund", "--loglevel=error"])


def secret_file(path, nbytes):
    """A random hex secret, created once, mode 0600."""
    if not (os.path.isfile(path) and os.path.getsize(path)):
        servers.write(path, secrets.token_hex(nbytes), private=True)


def service_env(svc, v):
    """A service's own variables (the table's env, and its mail variant)."""
    env = table.expand_all(svc["env"], v)
    env.update(table.expand_all(svc.get("env_smtp_host" if table.env("SMTP_HOST") else "env_maildev", []), v))
    return env


def mariadb_root(var, sql):
    return subprocess.run(["mariadb", "--no-defaults", f"--socket={var}/mariadb/mysqld.sock", "-uroot"],
                          input=sql, text=True).returncode == 0


def start_servers(v):
    """MariaDB with one database and one least-privilege user per service (passwords under var/secrets), and
    RabbitMQ, which boots meanwhile, with one least-privilege user per service."""
    var, t = v["var"], table.load()["servers"]
    for name in ("mariadb", "rabbitmq") + (("mongodb",) if table.gridfs_server(v) else ()):
        os.makedirs(f"{var}/{name}", exist_ok=True)
        servers.write(f"{var}/{name}/port", v[t[name]["stack_port"]] + "\n")
    if table.gridfs_server(v):
        try:
            servers.start("mongodb", f"{var}/mongodb")
        except servers.ServerError:
            raise Die(f"the MongoDB-wire test server did not start (logs in {var}/mongodb)")
    rabbitmq_failed = f"RabbitMQ did not start (logs in {var}/rabbitmq*/log)"
    nodes = rabbitmq_nodes(v)
    try:
        servers.launch("rabbitmq", nodes[0], management_port=v[t["rabbitmq"]["stack_management_port"]])
        for d in nodes[1:]:  # boot beside the first, sharing its epmd and cookie; joined below
            servers.launch("rabbitmq", d, management_port="", cluster_with=nodes[0])
    except servers.ServerError:
        raise Die(rabbitmq_failed)
    databases = mariadb_nodes(v)
    galera = {"galera": databases} if len(databases) > 1 else {}
    try:
        servers.start("mariadb", databases[0], **galera)  # a cluster's founder first; the others copy it (SST)
        for d in databases[1:]:
            servers.launch("mariadb", d, **galera)
        for d in databases[1:]:
            try:
                servers.wait("mariadb", d)
            except servers.ServerError:
                # A joiner whose first snapshot transfer failed gives up (as a pod would, and be restarted): once more.
                say(f"{d}: its first join failed; starting it again")
                servers.launch("mariadb", d)
                servers.wait("mariadb", d)
    except servers.ServerError:
        raise Die(f"MariaDB did not start (logs in {var}/mariadb*)")
    for db, user in t["mariadb"]["databases"].items():
        secret_file(f"{var}/secrets/mysql-{db}-password", 16)
        password = servers.read(f"{var}/secrets/mysql-{db}-password")
        if not mariadb_root(var, f"""CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'127.0.0.1';
"""):
            raise Die(f"could not create the database {db}")
    try:
        for d in nodes:
            servers.wait("rabbitmq", d)
        for d in nodes[1:]:
            servers.cluster_join(d, nodes[0])
    except servers.ServerError:
        raise Die(rabbitmq_failed)
    rabbitmq_users(v)


def rabbitmq_nodes(v):
    """The directories of the stack's RabbitMQ nodes: {var}/rabbitmq, and with RABBITMQ_NODES=N (a cluster on this
    machine, for the failover campaign) {var}/rabbitmq-2 ... {var}/rabbitmq-N, on free ports, joined to the first."""
    count = v.get("RABBITMQ_NODES", "1")
    if not count.isdigit() or not 1 <= int(count) <= 5:
        raise Die(f"RABBITMQ_NODES={count}: a number from 1 to 5")
    return [f"{v['var']}/rabbitmq"] + [f"{v['var']}/rabbitmq-{i}" for i in range(2, int(count) + 1)]


def mariadb_nodes(v):
    """The directories of the stack's MariaDB nodes: {var}/mariadb, and with MARIADB_NODES=N (a Galera cluster on this
    machine, for the failover campaign) {var}/mariadb-2 ... {var}/mariadb-N, whose ports are chosen here, before the
    services' MYSQL_HOST (MARIADB_HOSTS: every node, in order) is written."""
    count = v.get("MARIADB_NODES", "1")
    if not count.isdigit() or not 1 <= int(count) <= 5:
        raise Die(f"MARIADB_NODES={count}: a number from 1 to 5")
    nodes = [f"{v['var']}/mariadb"] + [f"{v['var']}/mariadb-{i}" for i in range(2, int(count) + 1)]
    for d in nodes[1:]:
        os.makedirs(d, exist_ok=True)
        servers.remember(f"{d}/port", lambda: free_port()[0])
    return nodes


def mariadb_hosts(v):
    nodes = mariadb_nodes(v)
    if len(nodes) == 1:
        return "127.0.0.1"
    return ",".join(f"127.0.0.1:{v['MARIADB_PORT'] if d == nodes[0] else servers.read(f'{d}/port')}" for d in nodes)


def all_node_dirs(var, name):
    """Every node directory of a server a stack in var may have left, whatever *_NODES says now."""
    return [f"{var}/{name}"] + sorted(glob.glob(f"{var}/{name}-[0-9]"))


def rabbitmq_users(v):
    """The services' RabbitMQ users with their least-privilege permissions, and the exchanges and queues that those
    users may not create: the Kubernetes manifests' definitions ([servers.rabbitmq] definitions), imported with
    rabbitmqctl. Idempotent (an import updates what exists and keeps the queues' messages), so at every start: the
    node keeps them across restarts anyway. Each password is made once; each service's AMQP URL is written for the
    current port. The administrator stays out: locally the management UI keeps guest."""
    secret_dir, d = v["secrets"], f"{v['var']}/rabbitmq"
    with open(table.expand(table.load()["servers"]["rabbitmq"]["definitions"], v)) as f:
        definitions = json.load(f)
    admins = {u["name"] for u in definitions["users"] if "administrator" in u.get("tags", [])}
    definitions["users"] = [u for u in definitions["users"] if u["name"] not in admins]
    for key in ("permissions", "topic_permissions"):
        definitions[key] = [p for p in definitions.get(key, []) if p["user"] not in admins]
    for user in definitions["users"]:
        secret_file(f"{secret_dir}/rabbitmq-{user['name']}-password", 16)
        user["password"] = servers.read(f"{secret_dir}/rabbitmq-{user['name']}-password")
    rendered = f"{d}/definitions.json"  # passwords: private, and removed at once
    servers.write(rendered, json.dumps(definitions), private=True)
    try:
        status, output = servers.rabbitmqctl(d, "import_definitions", rendered)
    finally:
        servers.remove(rendered)
    # The import reports success even when part of it was refused: look at what the node has.
    wanted = {(p["user"], p["configure"], p["write"], p["read"]) for p in definitions["permissions"]}
    listed, shown = servers.rabbitmqctl(d, "list_permissions", "--no-table-headers")
    have = {tuple(line.split("\t")) for line in shown.splitlines()}
    if status or listed or not wanted <= have:
        raise Die("could not create the RabbitMQ users (rabbitmqctl import_definitions): "
                  + (output.strip() if status else shown.strip() if listed else "the node's permissions differ"))
    ports = [v["RABBITMQ_PORT"]] + [servers.read(f"{n}/port") for n in rabbitmq_nodes(v)[1:]]
    for user in definitions["users"]:  # a cluster's nodes, each in turn (AMQP_URL takes a list)
        urls = [f"amqp://{user['name']}:{user['password']}@127.0.0.1:{port}/" for port in ports]
        servers.write(f"{secret_dir}/amqp-url-{user['name']}", ",".join(urls) + "\n", private=True)


def create_demo_user(v):
    credentials = f"{v['var']}/demo-credentials"
    if os.path.isfile(credentials) and os.path.getsize(credentials):
        return
    email, password = table.load()["stack"]["demo_email"], secrets.token_hex(9)
    auth = next(s for s in table.load()["services"] if s["name"] == "auth")
    env = dict(service_env(auth, v), PATH=os.environ.get("PATH", ""))
    try:
        ok = subprocess.run([f"{v['bin']}/mp3converter-admin", "user", "add", "--email", email], input=password + "\n",
                            text=True, env=env, stdout=subprocess.DEVNULL).returncode == 0
    except OSError:
        ok = False
    if not ok:
        raise Die("could not create the demo user")
    servers.write(credentials, f"email={email}\npassword={password}\n", private=True)


def banner(v):
    t = table.load()["stack"]
    with open(f"{v['var']}/demo-credentials") as f:
        credentials = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    mail = table.expand(t["mail_smtp_host" if table.env("SMTP_HOST") else "mail_maildev"], v)
    kind = "storage_gridfs" if table.gridfs_server(v) else "storage_file" if v["STORAGE_URL"].startswith("file:") \
        else "storage_url"
    storage = table.expand(t[kind], v)
    sys.stdout.write(table.expand(t["banner"], dict(v, mail=mail, storage=storage, demo_email=credentials["email"],
                                                    demo_password=credentials["password"])))
    sys.stdout.flush()


def up(v):
    var, t = v["var"], table.load()
    ready_fd = os.environ.pop(READY_FD, None)
    pid = stack_pid(var)
    if pid:
        raise Die(f"a stack already runs from {var} (pid {pid}): scripts/stack stop, or MP3C_VAR_DIR=... for another")
    # Leftovers of a run that was killed hold the ports: stop them before checking.
    with contextlib.redirect_stderr(io.StringIO()):
        for name, d in [("mongodb", f"{var}/mongodb")] + [
                (name, d) for name in ("rabbitmq", "mariadb") for d in all_node_dirs(var, name)]:
            with contextlib.suppress(servers.ServerError):
                servers.stop(name, d)
    if v["STORAGE"] not in ("file", "gridfs"):
        raise Die(f"STORAGE={v['STORAGE']}: file (the default) or gridfs")
    chosen = table.stack_services()
    unused = {port for s in t["services"] if s not in chosen for port in s["ports"]}
    if not table.gridfs_server(v):
        unused.add("MONGODB_PORT")
    for name, port in t["ports"].items():
        if name not in unused and port_in_use(v[name]):
            raise Die(f"port {v[name]} ({port['what']}) is already in use. Stop whatever listens there, or choose "
                      f"another port: {name}=NNNN make up")
    build()
    for sub in ("secrets", "storage", "tmp"):
        os.makedirs(f"{var}/{sub}", exist_ok=True)
    os.chmod(f"{var}/secrets", 0o700)
    for name, nbytes in t["stack"]["secrets"].items():
        secret_file(f"{var}/secrets/{name}", nbytes)

    v["MARIADB_HOSTS"] = mariadb_hosts(v)
    # A clean environment: a JWT_SECRET or MYSQL_PASSWORD in the caller's shell must not reach the services.
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), "LANG": "C.UTF-8"}
    services = [Service(s["name"], s["colour"], [table.expand(a, v) for a in s["command"]],
                        dict(base, **service_env(s, v)), table.expand(s["ready"], v)) for s in chosen]

    def ready():
        banner(v)
        if ready_fd:
            with contextlib.suppress(OSError):  # `start` may be gone
                os.write(int(ready_fd), b"ready\n")
                os.close(int(ready_fd))

    status, supervisor = 0, Supervisor(services, t["stack"]["backoff"], t["stack"]["stop_order"])  # signals from here
    try:
        servers.write(f"{var}/stack.pid", f"{os.getpid()}\n")
        start_servers(v)
        create_demo_user(v)
        supervisor.run(ready, t["stack"]["ready_timeout"])
    except Interrupted:
        pass
    except Die as e:
        red(e)
        status = 1
    finally:
        supervisor.stopping = True
        say("stopping")
        supervisor.stop()
        for name, d in [(name, d) for name in ("rabbitmq", "mariadb") for d in reversed(all_node_dirs(var, name))] + [
                ("mongodb", f"{var}/mongodb")]:
            with contextlib.suppress(servers.ServerError):
                servers.stop(name, d)
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{var}/stack.pid")
        say(f"stopped; data kept in {var}")
    return status


def start(v):
    var = v["var"]
    log = f"{var}/log/stack.log"
    pid = stack_pid(var)
    if pid:
        say(f"already running (pid {pid}); scripts/stack status tells more")
        return 0
    os.makedirs(f"{var}/log", exist_ok=True)
    open(log, "w").close()  # emptied at each start
    ready_r, ready_w = os.pipe()
    with open(log, "ab") as out:
        # A session of its own: the stack outlives this command and the terminal it ran in.
        p = subprocess.Popen([f"{ROOT}/scripts/stack", "up"], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True, pass_fds=[ready_w],
                             env=dict(os.environ, **{READY_FD: str(ready_w)}))
    os.close(ready_w)
    limit = table.env("STACK_START_TIMEOUT", "1800")
    say(f"starting in the background (pid {p.pid}, log {log}); the first start also builds")
    if not select.select([ready_r], [], [], float(limit))[0]:
        raise Die(f"the stack is not up after {limit} s (log: {log})")
    with open(log, errors="replace") as f:
        lines = f.readlines()
    if not os.read(ready_r, 64):  # closed without a word: `up` has ended
        sys.stderr.write("".join(lines[-40:]))
        raise Die(f"the stack did not start (log above and in {log})")
    # The banner, as `up` printed it.
    first = next((i for i, line in enumerate(lines) if RUNNING in line), 0)
    last = next((i for i in range(first, len(lines)) if "download?fid=" in lines[i]), len(lines) - 1)
    sys.stderr.write("".join(lines[first:last + 1]).replace(" (Ctrl-C stops it)",
                                                             " in the background (scripts/stack stop stops it)"))
    return 0


def stop(v):
    pid = stack_pid(v["var"])
    if not pid:
        say("not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    if not servers.wait_gone([pid], 120):
        raise Die(f"the stack (pid {pid}) did not stop within 120 s")
    say(f"stopped; data kept in {v['var']}")
    return 0


def status(v):
    pid = stack_pid(v["var"])
    if not pid:
        say(f"not running (data in {v['var']})")
        return 3
    say(f"running (pid {pid}, data in {v['var']})")
    checks = [(s["name"], table.expand(s["ready"], v)) for s in table.stack_services()]
    checks.append(("rabbitmq-ui", table.expand(table.load()["servers"]["rabbitmq"]["status_url"], v)))
    all_ready = True
    for name, url in checks:
        ready = http_ok(url, 5)
        all_ready &= ready
        print(f"  {name:<13} {'ready' if ready else 'NOT READY':<11}{url}", flush=True)
    return 0 if all_ready else 1


def logs(v):
    log = f"{v['var']}/log/stack.log"
    if not os.path.isfile(log):
        raise Die(f"no log yet: the background stack writes {log}")
    lines = table.env("LINES_ONLY")
    if lines or not sys.stdout.isatty():
        os.execvp("tail", ["tail", "-n", lines or "+1", log])
    os.execvp("tail", ["tail", "-n", "100", "-F", log])
