"""scripts/with-servers and scripts/harness-ctl: the tests' private servers (their usage is in those two scripts)."""
import os, shutil, signal, subprocess, sys, tempfile, threading, time

from . import servers, table

WITH_SERVERS_USAGE = """usage: scripts/with-servers [--mongodb] [--mariadb] [--smtp] [--rabbitmq] -- COMMAND [ARGS...]
Runs COMMAND with private MongoDB-wire/MariaDB/SMTP/RabbitMQ instances (default: all four).
"""
HARNESS_CTL_USAGE = "usage: harness-ctl stop|start|restart|status mongodb|mariadb|smtp|rabbitmq"
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


class Signalled(Exception):
    def __init__(self, sig):
        super().__init__(sig)
        self.sig = sig


def _raise(sig, frame):
    raise Signalled(sig)


def with_servers(argv):
    names = list(table.load()["servers"])
    wanted = []
    while argv and argv[0] != "--":
        flag = argv.pop(0)
        if flag in ("-h", "--help"):
            sys.stdout.write(WITH_SERVERS_USAGE)
            return 0
        if flag[2:] not in names or not flag.startswith("--"):
            sys.stderr.write(WITH_SERVERS_USAGE)
            return 2
        wanted.append(flag[2:])
    command = argv[1:]
    if not command:
        sys.stderr.write(WITH_SERVERS_USAGE)
        return 2
    wanted = [n for n in names if n in wanted] or names
    # A server whose `external` variable the caller set is not started: the command uses the one it names.
    for name in list(wanted):
        s = table.load()["servers"][name]
        if s.get("external") and table.env(s["external"]):
            servers.say(f"{s['external']} is set: the command uses that server, not a private {s['title']}")
            wanted.remove(name)

    for sig in EXIT_STATUS:
        signal.signal(sig, _raise)
    root, child = None, None
    try:
        root = tempfile.mkdtemp(prefix="mp3c-servers.", dir="/tmp")
        env = dict(os.environ, MP3C_TEST_SERVERS_DIR=root,
                   MP3C_HARNESS_CTL=os.path.join(table.ROOT, "scripts", "harness-ctl"))
        # The slow ones (RabbitMQ, then the SMTP server) boot while MariaDB starts.
        for name in reversed(wanted):
            servers.launch(name, f"{root}/{name}")
        for name in wanted:
            servers.wait(name, f"{root}/{name}")
            env.update(servers.exports(name, f"{root}/{name}"))
        # In our process group, so that a Ctrl-C on the terminal reaches the command too.
        try:
            child = subprocess.Popen(command, env=env)
        except OSError as e:
            print(f"with-servers: {command[0]}: {e.strerror}", file=sys.stderr)
            return 127 if isinstance(e, FileNotFoundError) else 126
        status = child.wait()
        return 128 - status if status < 0 else status
    except servers.ServerError:
        return 1
    except Signalled as e:
        for sig in EXIT_STATUS:
            signal.signal(sig, signal.SIG_IGN)
        if child is not None and child.poll() is None:
            # Passed on; the command gets a moment to finish.
            child.send_signal(e.sig)
            grace = float(table.env("MP3C_CHILD_GRACE", "10"))
            try:
                child.wait(grace)
            except subprocess.TimeoutExpired:
                servers.say(f"command still running {grace:g} s after SIG{signal.Signals(e.sig).name[3:]}, killing it")
                child.kill()
                child.wait()
        return EXIT_STATUS[e.sig]
    finally:
        for sig in EXIT_STATUS:  # a second Ctrl-C must not interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        if root:
            stops = [threading.Thread(target=_stop_quietly, args=(name, f"{root}/{name}")) for name in wanted]
            for t in stops:
                t.start()
            for t in stops:
                t.join()
            shutil.rmtree(root, ignore_errors=True)


def _stop_quietly(name, d):
    try:
        servers.stop(name, d)
    except servers.ServerError:
        pass


def harness_ctl(argv):
    names = list(table.load()["servers"])
    if len(argv) != 2 or argv[0] not in ("stop", "start", "restart", "status") or argv[1] not in names:
        print(HARNESS_CTL_USAGE, file=sys.stderr)
        return 2
    action, name = argv
    root = table.env("MP3C_TEST_SERVERS_DIR")
    if not root:
        print("harness: error: MP3C_TEST_SERVERS_DIR is not set (run under scripts/with-servers)", file=sys.stderr)
        return 2
    d = os.path.join(root, name)
    if not os.path.isdir(d):
        print(f"harness: error: no {name} instance in {root} (was with-servers started with it?)", file=sys.stderr)
        return 2
    if action == "status":
        if servers.ping(name, d):
            print(f"{name}: running on 127.0.0.1:{servers.read(os.path.join(d, 'port'))}")
            return 0
        print(f"{name}: not running")
        return 3
    try:
        if action in ("stop", "restart"):
            t0 = time.monotonic()
            servers.stop(name, d)
            servers.say(f"{name} stopped in {time.monotonic() - t0:.1f} s")
        if action in ("start", "restart"):
            servers.start(name, d)
    except servers.ServerError:
        return 1
    return 0
