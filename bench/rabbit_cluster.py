"""Driven by bench/rabbit-cluster: RabbitMQ's leader of the `video` queue killed -9 in the middle of a backlog.

Its own stack (scripts/stack on free ports in a temporary directory, as the end-to-end test) with RABBITMQ_NODES=3:
three rabbitmq-server nodes on this machine (own node names, ports and data directories, one epmd, one cookie),
joined into one cluster; the broker definitions (quorum queues) imported once the cluster has formed, so that every
queue has a member on each node; each service's AMQP_URL lists the three nodes. Three users upload JOBS files (2 s WAV,
5 s MP4, every fifth a 30 s WAV), each with a webhook to a receiver here. Once some jobs are done and converters hold
deliveries of `video`, the node that leads `video` is killed with kill -9 (its whole process group). Measured: how long until a surviving node leads
`video`, and until the next job is done. Then every job must be done, its MP3 the source's length, exactly one e-mail
and one webhook each, no dead letter. The killed node is started again (same name, data and port) and must rejoin:
three running nodes, and every member of `video` back. A last job goes through the healed cluster.

Usage: python3 bench/rabbit_cluster.py JOBS. Last line:
cluster: jobs=N done=N lost=0 duplicate_mails=D duplicate_webhooks=W dead_letters=0 failover_s=F rejoined=yes
"""
import collections, concurrent.futures, http.server, json, os, shutil, signal, sys, tempfile, threading, time

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import e2e_test  # noqa: E402  (its Stack, http, make_media, probe)
from mp3c_local import servers  # noqa: E402  (the nodes: launch, wait, rabbitmqctl)
from load_upload import register  # noqa: E402
from chaos_soak import Hooks, upload, job_of  # noqa: E402

NODES = 3


def node_dirs(stack):
    return [os.path.join(stack.var, "rabbitmq")] + [os.path.join(stack.var, f"rabbitmq-{i}")
                                                     for i in range(2, NODES + 1)]


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
    """`video` as a node sees it: its type, leader, members and the members online; None if it cannot say."""
    try:
        for q in ctl_json(d, "list_queues", "name", "type", "leader", "members", "online", "messages_ready",
                          "messages_unacknowledged"):
            if q["name"] == "video":
                return q
    except (RuntimeError, ValueError):
        return None
    return None


def dead_letters(d):
    total = 0
    for q in ctl_json(d, "list_queues", "name", "messages"):
        if q["name"].endswith(".dead"):
            total += int(q["messages"])
    return total


def kill_node(d):
    """kill -9 of the node's Erlang VM and what it started (its process group); its epmd, if it has one, stays."""
    pid = int(servers.read(os.path.join(d, "server.pid")))
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    servers.wait_gone([pid], 30)


def main(jobs_wanted):
    stack = e2e_test.Stack()
    stack.env.update(WEBHOOK_ALLOW_PRIVATE="on", RABBITMQ_NODES=str(NODES))
    work = tempfile.mkdtemp(prefix="mp3c-cluster-")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    log = collections.Counter()
    try:
        stack.run("start", timeout=600)
        dirs = node_dirs(stack)
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
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            jobs = list(pool.map(lambda p: (p[0], p[1], upload(stack, tokens[p[0]], p[1], hook, log)), plan))
        print(f"cluster: {len(jobs)} jobs submitted", flush=True)

        def done_count():
            return sum(1 for u, _, j in jobs if (job_of(stack, tokens[u], j) or {}).get("status") == "done")

        # Mid-backlog: some jobs done, and converters holding deliveries of video (unacknowledged), which the new
        # leader must deliver again.
        e2e_test.eventually(lambda: done_count() >= 3 and (video_queue(dirs[0]) or {}).get("messages_unacknowledged"),
                            300, "the first jobs done and others being converted")
        q = video_queue(dirs[0])
        leader, done_before = q["leader"], done_count()
        waiting = f"{q['messages_ready']} waiting and {q['messages_unacknowledged']} being converted"
        victim = names[leader]
        survivor = next(d for d in dirs if d != victim)
        killed_at = time.monotonic()
        kill_node(victim)
        print(f"cluster: killed -9 {leader} (leader of video) with {done_before} jobs done, {waiting}",
              flush=True)
        new = e2e_test.eventually(lambda: (lambda x: x if x and x["leader"] not in ("", leader) else None)(
            video_queue(survivor)), 120, "a new leader of video")
        failover = time.monotonic() - killed_at
        e2e_test.eventually(lambda: done_count() > done_before, 300, "a job done after the kill")
        next_done = time.monotonic() - killed_at
        print(f"cluster: {new['leader']} leads video {failover:.1f} s after the kill; the next job done after "
              f"{next_done:.1f} s", flush=True)

        done, failed = [], []
        for user, path, job_id in jobs:
            job = e2e_test.eventually(lambda: (lambda j: j if j and j["status"] in ("done", "failed") else None)(
                job_of(stack, tokens[user], job_id)), 600, f"job {job_id}")
            (done if job["status"] == "done" else failed).append((user, path, job_id))
        wrong_length = []
        for user, path, job_id in done:
            out = os.path.join(work, job_id + ".mp3")
            status, body, _ = e2e_test.http("GET", f"{stack.gateway}/jobs/{job_id}/mp3", token=tokens[user])
            with open(out, "wb") as f:
                f.write(body)
            seconds = float(e2e_test.probe(out)["format"]["duration"]) if status == 200 else -1
            if abs(seconds - lengths[path]) > 0.1:
                wrong_length.append((job_id, seconds))
        ids = [j for _, _, j in done]

        def mails_by_job():
            return collections.Counter(j for m in stack.mails() for j in ids
                                       if j in json.dumps(m.get("headers", {})) or j in m.get("text", ""))
        e2e_test.eventually(lambda: all(mails_by_job()[j] for j in ids), 300, "an e-mail for every job")
        e2e_test.eventually(lambda: all(Hooks.received[j] for j in ids), 300, "a webhook for every job")
        time.sleep(5)  # late duplicates, if any, have the time to arrive
        mails = mails_by_job()
        duplicate_mails = sum(max(0, mails[j] - 1) for j in ids)
        duplicate_hooks = sum(max(0, Hooks.received[j] - 1) for j in ids)
        letters = dead_letters(survivor)

        # The killed node comes back with its name, data and port, and rejoins by itself.
        restarted_at = time.monotonic()
        servers.launch("rabbitmq", victim)
        servers.wait("rabbitmq", victim)
        rejoined = e2e_test.eventually(
            lambda: len(running_nodes(survivor)) == NODES and (lambda x: x and len(x["online"]) == NODES)(
                video_queue(survivor)), 120, "the killed node back in the cluster, video's member online")
        rejoin = time.monotonic() - restarted_at
        print(f"cluster: {leader} rejoined {rejoin:.1f} s after its start: "
              f"{len(running_nodes(survivor))} nodes running, video online on {len(video_queue(survivor)['online'])}",
              flush=True)
        last = upload(stack, tokens[users[0]], files[0], hook, log)
        e2e_test.eventually(lambda: (job_of(stack, tokens[users[0]], last) or {}).get("status") == "done", 120,
                            "a job through the healed cluster")

        print(f"cluster: uploads retried: {dict(log)}")
        for name, items in (("failed", failed), ("wrong length", wrong_length)):
            for item in items[:10]:
                print(f"cluster: {name}: {item}")
        lost = len(jobs) - len(done)
        print(f"cluster: jobs={len(jobs)} done={len(done)} lost={lost} duplicate_mails={duplicate_mails} "
              f"duplicate_webhooks={duplicate_hooks} dead_letters={letters} failover_s={failover:.1f} "
              f"rejoined={'yes' if rejoined else 'no'}")
        return 0 if lost == 0 and not wrong_length and letters == 0 and duplicate_mails + duplicate_hooks == 0 else 1
    finally:
        receiver.shutdown()
        stack.run("stop", check=False)
        for p in stack.pid_of(stack.var):
            os.kill(p, 9)
        shutil.rmtree(stack.var, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
