"""Driven by bench/rabbit-cluster: RabbitMQ's leader of the `video` queue killed -9 in the middle of a backlog.

Its own stack (scripts/stack on free ports in a temporary directory, as the end-to-end test) with RABBITMQ_NODES=3:
three rabbitmq-server nodes on this machine (own node names, ports and data directories, one epmd, one cookie),
joined into one cluster; the broker definitions (quorum queues) imported once the cluster has formed, so that every
queue has a member on each node; each service's AMQP_URL lists the three nodes. The converters are paused (SIGSTOP)
while three users upload JOBS files (2 s WAV, 5 s MP4, every fifth a 30 s WAV), each with a webhook, so that a
backlog builds up in `video` and each converter holds a delivery. Then the node that leads `video` is killed with
kill -9 (its whole process group) and the converters go on (SIGCONT). Measured: how long until a surviving node leads
`video`, and until the first job is done. Then every job must be done, its MP3 the source's length, exactly one e-mail
and one webhook each, no dead letter. The killed node is started again (same name, data and port) and must rejoin:
three running nodes, and every member of `video` back. A last job goes through the healed cluster.

Usage: python3 bench/rabbit_cluster.py JOBS. Last line:
cluster: jobs=N done=N lost=0 duplicate_mails=D duplicate_webhooks=W dead_letters=0 failover_s=F rejoined=yes
"""
import collections, concurrent.futures, glob, json, os, shutil, signal, sys, tempfile, time

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import e2e_test  # noqa: E402  (its Stack, make_media, probe)
from mp3c_local import servers  # noqa: E402  (the nodes: launch, wait, rabbitmqctl)
from load_upload import register  # noqa: E402
from campaign import dead_letters, job_of, report, settle, through, upload, webhook_receiver  # noqa: E402

NODES = 3


def ctl_json(d, *args):
    status, out = servers.rabbitmqctl(d, *args, "--formatter", "json")
    if status != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {out.strip()}")
    return json.loads(out)


def running_nodes(d):
    try:
        return ctl_json(d, "cluster_status").get("running_nodes", [])
    except (RuntimeError, ValueError):
        return []


def video_queue(d):
    """`video` as a node sees it: its type, leader, members, members online and counts; None if it cannot say."""
    try:
        for q in ctl_json(d, "list_queues", "name", "type", "leader", "members", "online", "messages_ready",
                          "messages_unacknowledged"):
            if q["name"] == "video":
                return q
    except (RuntimeError, ValueError):
        return None
    return None


def signal_converters(stack, sig):
    for pid in stack.converters():
        os.kill(pid, sig)


def main(jobs_wanted):
    stack = e2e_test.Stack()
    stack.env.update(WEBHOOK_ALLOW_PRIVATE="on", RABBITMQ_NODES=str(NODES))
    work = tempfile.mkdtemp(prefix="mp3c-cluster-")
    receiver, hook = webhook_receiver()
    log = collections.Counter()
    try:
        stack.run("start", timeout=600)
        dirs = [os.path.join(stack.var, "rabbitmq")] + [os.path.join(stack.var, f"rabbitmq-{i}")
                                                         for i in range(2, NODES + 1)]
        names = {servers.read(os.path.join(d, "nodename")): d for d in dirs}
        assert len(running_nodes(dirs[0])) == NODES, f"a cluster of {NODES}: {running_nodes(dirs[0])}"
        q = video_queue(dirs[0])
        assert q and q["type"] == "quorum" and len(q["members"]) == NODES, f"video on every node: {q}"
        print(f"cluster: {NODES} nodes running; video is a quorum queue led by {q['leader']}", flush=True)

        files = [e2e_test.make_media(os.path.join(work, "short.wav"), seconds=2, video=False),
                 e2e_test.make_media(os.path.join(work, "clip.mp4"), seconds=5),
                 e2e_test.make_media(os.path.join(work, "long.wav"), seconds=30, video=False)]
        lengths = {f: float(e2e_test.probe(f)["format"]["duration"]) for f in files}
        users = [f"cluster{i}-{os.getpid()}@example.com" for i in range(3)]
        tokens = {u: register(stack, u, "cluster-password-1") for u in users}
        plan = [(users[i % 3], files[2] if i % 5 == 0 else files[i % 2]) for i in range(jobs_wanted)]

        # A backlog for certain: the converters pause (their connections stay open, well within the heartbeats)
        # while the jobs arrive, each holding the delivery it had taken.
        signal_converters(stack, signal.SIGSTOP)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            jobs = list(pool.map(lambda p: (p[0], p[1], upload(stack, tokens[p[0]], p[1], hook, log)), plan))
        q = e2e_test.eventually(
            lambda: (lambda x: x if x and x["messages_ready"] + x["messages_unacknowledged"] >= 2 else None)(
                video_queue(dirs[0])), 60, "a backlog in video")
        leader, victim = q["leader"], names[q["leader"]]
        survivor = next(d for d in dirs if d != victim)
        pid = int(servers.read(os.path.join(victim, "server.pid")))
        killed_at = time.monotonic()
        os.killpg(os.getpgid(pid), signal.SIGKILL)  # the node and what it started; its epmd, if it has one, stays
        signal_converters(stack, signal.SIGCONT)
        servers.wait_gone([pid], 30)
        print(f"cluster: {len(jobs)} jobs submitted; killed -9 {leader} (leader of video) with "
              f"{q['messages_ready']} waiting and {q['messages_unacknowledged']} held by the paused converters",
              flush=True)
        new = e2e_test.eventually(lambda: (lambda x: x if x and x["leader"] not in ("", leader) else None)(
            video_queue(survivor)), 120, "a new leader of video")
        failover = time.monotonic() - killed_at
        e2e_test.eventually(lambda: any((job_of(stack, tokens[u], j) or {}).get("status") == "done"
                                        for u, _, j in jobs), 300, "a job done after the kill")
        first_done = time.monotonic() - killed_at
        print(f"cluster: {new['leader']} leads video {failover:.1f} s after the kill; the first job done after "
              f"{first_done:.1f} s", flush=True)

        outcome = settle(stack, tokens, jobs, lengths, work, timeout=600)
        letters = dead_letters(stack, os.path.relpath(survivor, stack.var))

        # The killed node comes back with its name, data and port, and rejoins by itself.
        restarted_at = time.monotonic()
        servers.launch("rabbitmq", victim)
        servers.wait("rabbitmq", victim)
        rejoined = e2e_test.eventually(
            lambda: len(running_nodes(survivor)) == NODES and (lambda x: x and len(x["online"]) == NODES)(
                video_queue(survivor)), 120, "the killed node back in the cluster, video's member online")
        print(f"cluster: {leader} rejoined {time.monotonic() - restarted_at:.1f} s after its start: "
              f"{len(running_nodes(survivor))} nodes running, video online on {len(video_queue(survivor)['online'])}",
              flush=True)
        through(stack, tokens[users[0]], files[0], hook, log, "a job through the healed cluster")
        ok = report("cluster", jobs, outcome, letters, log,
                    f"failover_s={failover:.1f} rejoined={'yes' if rejoined else 'no'}")
        return 0 if ok else 1
    except BaseException:
        for d in sorted(glob.glob(os.path.join(stack.var, "rabbitmq*"))):  # what the nodes said, before it is removed
            for name in ("console.log",):
                try:
                    with open(os.path.join(d, "log", name), errors="replace") as f:
                        print(f"cluster: ---- {d}/log/{name} ----\n" + "".join(f.readlines()[-40:]), flush=True)
                except OSError:
                    pass
        raise
    finally:
        signal_converters(stack, signal.SIGCONT)
        receiver.shutdown()
        stack.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
