"""Driven by bench/chaos-soak: JOBS jobs through the whole stack while every fault happens in the same run.

Its own stack (scripts/stack on free ports in a temporary directory, as the end-to-end test: MariaDB, RabbitMQ,
maildev, auth, the gateway, two converters, notification) with webhooks allowed to a receiver on 127.0.0.1 that this
script runs. Three users upload JOBS files (2 s WAV, 5 s MP4, and every fifth a 60 s WAV that is still converting
when the faults come), each with a webhook. While they run, on a timeline: kill -9 both converters (twice), restart
RabbitMQ, kill -9 the gateway during uploads (the supervisor starts it again; the uploads it broke fail and are
retried, as a client would), stop MariaDB for 10 s, fill the store's disk (a 512 MiB tmpfs; needs root) for 8 s,
keep the SMTP catcher down for 20 s.

Then: every job is done (none failed or lost), its MP3 decodes to its source's length, exactly one e-mail and one
webhook per job (duplicates counted: a crash between sending and recording may cause one), no message in a
dead-letter queue, and no temporary or partial file left in the stores or the converters' TMPDIR.

Usage: python3 bench/chaos_soak.py JOBS. Last line:
soak: jobs=N done=N lost=0 duplicate_mails=D duplicate_webhooks=W dead_letters=0
"""
import collections, concurrent.futures, os, shutil, signal, subprocess, sys, tempfile, threading, time

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
import e2e_test  # noqa: E402  (its Stack, http, make_media, probe)
from load_upload import register  # noqa: E402
from campaign import dead_letters, settle, upload, webhook_receiver  # noqa: E402

JOBS = int(sys.argv[1])
STORE_BYTES = 512 << 20  # the store's disk: a tmpfs, so that it can be filled


def faults(stack, log, stopped):
    def kill_converters():
        for pid in stack.converters():
            os.kill(pid, signal.SIGKILL)
        log["converters killed (kill -9)"] += 1

    def kill_gateway():
        needle = stack.var.encode()
        for pid in stack.pid_of(os.path.join(e2e_test.BIN, "gateway")):
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read():
                    os.kill(pid, signal.SIGKILL)
        log["gateway killed (kill -9) during uploads"] += 1

    def smtp_down(seconds):
        until = time.monotonic() + seconds
        while time.monotonic() < until:  # the supervisor restarts it: stopped again until the time is up
            stack.stop_maildev()
            time.sleep(0.1)
        log[f"SMTP catcher down {seconds} s"] += 1

    def mariadb_down(seconds):
        stack.servers("stop", "mariadb")
        time.sleep(seconds)  # the outage's length is the point
        stack.servers("start", "mariadb")
        log[f"MariaDB stopped {seconds} s"] += 1

    def disk_full(seconds):
        # The file store's disk (a tmpfs the size of STORE_BYTES) filled to the last 64 KiB, then freed.
        storage = os.path.join(stack.var, "storage")
        if not os.path.ismount(storage):
            log["storage disk full: skipped (no tmpfs: needs root)"] += 1
            return
        free = os.statvfs(storage).f_bavail * os.statvfs(storage).f_frsize
        filler = os.path.join(storage, "filler")
        subprocess.run(["fallocate", "-l", str(max(0, free - 65536)), filler], check=True)
        time.sleep(seconds)
        os.remove(filler)
        log[f"storage disk full {seconds} s"] += 1

    def rabbitmq_restart():
        stack.servers("stop", "rabbitmq")
        stack.servers("start", "rabbitmq")
        log["RabbitMQ restarted"] += 1

    timeline = [(3, kill_converters), (6, kill_gateway), (10, rabbitmq_restart), (18, kill_converters),
                (22, lambda: mariadb_down(10)), (34, lambda: disk_full(8)), (44, lambda: smtp_down(20))]
    started = time.monotonic()
    for at, fault in timeline:
        time.sleep(max(0, started + at - time.monotonic()))
        fault()
    stopped.set()


def leftovers(stack):
    found = []
    for top in ("storage", "tmp"):
        for dirpath, _, files in os.walk(os.path.join(stack.var, top)):
            for f in files:
                if os.path.basename(dirpath) == "tmp" or f.endswith(".part") or top == "tmp":
                    found.append(os.path.join(dirpath, f))
    return found


def main():
    stack = e2e_test.Stack()
    stack.env["WEBHOOK_ALLOW_PRIVATE"] = "on"  # the receiver is on 127.0.0.1
    work = tempfile.mkdtemp(prefix="mp3c-soak-")
    receiver, hook = webhook_receiver()
    log = collections.Counter()
    storage = os.path.join(stack.var, "storage")
    os.makedirs(storage)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STORE_BYTES}", "tmpfs", storage], capture_output=True)
    try:
        stack.run("start", timeout=600)
        files = [e2e_test.make_media(os.path.join(work, "short.wav"), seconds=2, video=False),
                 e2e_test.make_media(os.path.join(work, "clip.mp4"), seconds=5),
                 e2e_test.make_media(os.path.join(work, "long.wav"), seconds=60, video=False)]
        lengths = {f: float(e2e_test.probe(f)["format"]["duration"]) for f in files}
        users = [f"soak{i}-{os.getpid()}@example.com" for i in range(3)]
        tokens = {u: register(stack, u, "soak-password-1") for u in users}
        plan = [(users[i % 3], files[2] if i % 5 == 0 else files[i % 2]) for i in range(JOBS)]
        stopped = threading.Event()
        chaos = threading.Thread(target=faults, args=(stack, log, stopped))
        started = time.monotonic()
        chaos.start()
        def paced(i):  # the uploads spread over the first 40 s, so that the faults fall among them
            time.sleep(max(0, started + i * 40 / JOBS - time.monotonic()))
            user, path = plan[i]
            return user, path, upload(stack, tokens[user], path, hook, log)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = list(pool.map(paced, range(JOBS)))
        chaos.join()
        outcome = settle(stack, tokens, jobs, lengths, work)
        done, failed, wrong_length = outcome.done, outcome.failed, outcome.wrong_length
        duplicate_mails, duplicate_hooks = outcome.duplicate_mails, outcome.duplicate_webhooks
        letters = dead_letters(stack)
        left = leftovers(stack)
        print(f"soak: {len(jobs)} jobs in {time.monotonic() - started:.0f} s; faults: {dict(log)}")
        for name, items in (("failed", failed), ("wrong length", wrong_length), ("left over", left)):
            for item in items[:10]:
                print(f"soak: {name}: {item}")
        lost_count = JOBS - len(done)
        print(f"soak: jobs={JOBS} done={len(done)} lost={lost_count} duplicate_mails={duplicate_mails} "
              f"duplicate_webhooks={duplicate_hooks} dead_letters={letters}")
        ok = (lost_count == 0 and not wrong_length and not left and letters == 0
              and duplicate_mails + duplicate_hooks <= 1)
        return 0 if ok else 1
    finally:
        receiver.shutdown()
        stack.run("stop", check=False)
        if os.path.ismount(storage):
            subprocess.run(["umount", "-l", storage], capture_output=True)
        stack.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
