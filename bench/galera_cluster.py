"""Driven by bench/galera-cluster: a MariaDB Galera node killed -9 while users sign in and jobs go through.

Its own stack (scripts/stack on free ports in a temporary directory, as the end-to-end test) with MARIADB_NODES=3:
three mariadbd nodes of one Galera cluster on this machine (Debian's galera-4; the others copy the founder by rsync),
each service's MYSQL_HOST listing the three in order, so that every service works through the first while it lives.
Three users upload JOBS files (2 s WAV, 5 s MP4) paced over 30 s, each with a webhook, while one signs in every 50 ms.
Some seconds in, the first node (the one every service uses) is killed with kill -9. Measured: sign-ins that failed
and the gap without a successful one. Then every job must be done, its MP3 the source's length, exactly one e-mail
and one webhook each, no dead letter; the killed node is started again (same name, data and port) and must rejoin
(three nodes, Synced) by an incremental transfer; a last job goes through.

Usage: python3 bench/galera_cluster.py JOBS. Last line:
galera: jobs=N done=N lost=0 duplicate_mails=D duplicate_webhooks=W dead_letters=0 signin_failures=F signin_gap_s=G
rejoined=yes
"""
import collections, concurrent.futures, os, shutil, signal, subprocess, sys, tempfile, threading, time

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import e2e_test  # noqa: E402  (its Stack, http, make_media, probe)
from mp3c_local import servers  # noqa: E402  (the nodes: launch, wait)
from load_upload import register  # noqa: E402
from campaign import dead_letters, report, settle, through, upload, webhook_receiver  # noqa: E402

NODES = 3


def status(d):
    """A node's Galera status (wsrep_cluster_size, wsrep_local_state_comment...), {} when it does not answer."""
    try:
        r = subprocess.run(["mariadb", "--no-defaults", f"--socket={d}/mysqld.sock", "-uroot", "-N", "--batch", "-e",
                            "SHOW GLOBAL STATUS LIKE 'wsrep_%'"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return {}
    return dict(line.split("\t", 1) for line in r.stdout.splitlines() if "\t" in line) if r.returncode == 0 else {}


class SignIns(threading.Thread):
    """Signs one user in every 50 ms; keeps (time, HTTP status or the error's name) of each attempt."""

    def __init__(self, stack, email, password):
        super().__init__(daemon=True)
        self.stack, self.email, self.password = stack, email, password
        self.results, self.stopped = [], threading.Event()

    def run(self):
        while not self.stopped.is_set():
            at = time.monotonic()
            try:
                code, _, _ = e2e_test.http("POST", self.stack.gateway + "/login", basic=(self.email, self.password),
                                           timeout=30)
            except OSError as e:
                code = type(e).__name__
            self.results.append((at, code))
            time.sleep(0.05)


def main(jobs_wanted):
    stack = e2e_test.Stack()
    stack.env.update(WEBHOOK_ALLOW_PRIVATE="on", MARIADB_NODES=str(NODES))
    work = tempfile.mkdtemp(prefix="mp3c-galera-")
    receiver, hook = webhook_receiver()
    log = collections.Counter()
    signins = None
    try:
        stack.run("start", timeout=600)
        dirs = [os.path.join(stack.var, "mariadb")] + [os.path.join(stack.var, f"mariadb-{i}")
                                                       for i in range(2, NODES + 1)]
        first = status(dirs[0])
        assert first.get("wsrep_cluster_size") == str(NODES), f"a cluster of {NODES}: {first}"
        print(f"galera: {NODES} nodes, {first.get('wsrep_local_state_comment')}", flush=True)

        files = [e2e_test.make_media(os.path.join(work, "short.wav"), seconds=2, video=False),
                 e2e_test.make_media(os.path.join(work, "clip.mp4"), seconds=5)]
        lengths = {f: float(e2e_test.probe(f)["format"]["duration"]) for f in files}
        users = [f"galera{i}-{os.getpid()}@example.com" for i in range(3)]
        tokens = {u: register(stack, u, "galera-password-1") for u in users}
        signins = SignIns(stack, users[0], "galera-password-1")
        signins.start()
        plan = [(users[i % 3], files[i % 2]) for i in range(jobs_wanted)]
        started = time.monotonic()
        killed = {}

        def kill_first_node():
            time.sleep(8)
            pid = int(servers.read(os.path.join(dirs[0], "server.pid")))
            killed["at"] = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            servers.wait_gone([pid], 30)
            print(f"galera: killed -9 the first node {8:.0f} s into the uploads", flush=True)

        killer = threading.Thread(target=kill_first_node)
        killer.start()

        def paced(i):  # spread over 30 s, so that the kill falls among the uploads
            time.sleep(max(0, started + i * 30 / jobs_wanted - time.monotonic()))
            user, path = plan[i]
            return user, path, upload(stack, tokens[user], path, hook, log)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            jobs = list(pool.map(paced, range(jobs_wanted)))
        killer.join()
        survivors = e2e_test.eventually(lambda: (lambda s: s if s.get("wsrep_cluster_size") == str(NODES - 1)
                                                 else None)(status(dirs[1])), 60, "the cluster without the node")
        print(f"galera: {survivors.get('wsrep_cluster_size')} nodes left, "
              f"{survivors.get('wsrep_local_state_comment')}", flush=True)

        outcome = settle(stack, tokens, jobs, lengths, work, timeout=600)
        letters = dead_letters(stack)

        signins.stopped.set()
        signins.join()
        after = [(at, code) for at, code in signins.results if at >= killed["at"]]
        failures = collections.Counter(str(code) for _, code in after if code != 200)
        first_ok = next((at for at, code in after if code == 200), None)
        gap = (first_ok - killed["at"]) if first_ok else float("inf")
        print(f"galera: {len(signins.results)} sign-ins, {len(after)} after the kill; failed: {dict(failures)}; "
              f"the first success {gap:.1f} s after the kill", flush=True)

        restarted_at = time.monotonic()
        servers.launch("mariadb", dirs[0])
        servers.wait("mariadb", dirs[0])
        rejoined = e2e_test.eventually(
            lambda: (lambda s: s if s.get("wsrep_cluster_size") == str(NODES)
                     and s.get("wsrep_local_state_comment") == "Synced" else None)(status(dirs[0])), 120,
            "the killed node back in the cluster, Synced")
        with open(os.path.join(dirs[0], "error.log"), errors="replace") as f:
            transfer = "IST" if "IST received" in f.read() else "SST"
        print(f"galera: the killed node rejoined ({transfer}) {time.monotonic() - restarted_at:.1f} s after its start",
              flush=True)
        through(stack, tokens[users[1]], files[0], hook, log, "a job through the healed cluster")
        ok = report("galera", jobs, outcome, letters, log,
                    f"signin_failures={sum(failures.values())} signin_gap_s={gap:.1f} "
                    f"rejoined={'yes' if rejoined else 'no'}")
        return 0 if ok and first_ok is not None else 1
    finally:
        if signins:
            signins.stopped.set()
        receiver.shutdown()
        stack.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
