"""What the campaigns under bench/ (chaos-soak, rabbit-cluster, galera-cluster) share: a webhook receiver, a patient
client's uploads, and the checks at the end that every job was done once, whole, with one e-mail and one webhook."""
import collections, http.client, http.server, json, os, sys, threading, time, urllib.parse

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
import e2e_test  # noqa: E402  (its Stack, http, probe)
from mp3c_local import servers  # noqa: E402  (rabbitmqctl against the stack's node)
from load_upload import multipart  # noqa: E402


class Hooks(http.server.BaseHTTPRequestHandler):
    """Counts the webhook calls it receives, by job."""
    received = collections.Counter()
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            job = json.loads(body).get("job_id", "?")
        except ValueError:
            job = "?"
        with Hooks.lock:
            Hooks.received[job] += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def webhook_receiver():
    """A receiver on 127.0.0.1 (the stack must allow private webhooks): (the server, its URL)."""
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver, f"http://127.0.0.1:{receiver.server_address[1]}/hook"


def upload(stack, token, path, hook, log):
    """Uploads as a patient client: connection failures, 5xx and 429 are tried again (the gateway restarts)."""
    boundary, body = multipart(path)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"callback_url\"\r\n\r\n{hook}\r\n".encode()
            + body)  # the webhook's field before the file
    port = urllib.parse.urlparse(stack.gateway).port
    for attempt in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("POST", "/upload", body, {"Authorization": "Bearer " + token,
                                                "Content-Type": f"multipart/form-data; boundary={boundary}"})
            r = c.getresponse()
            answer = r.read()
            c.close()
            if r.status == 202:
                return json.loads(answer)["job_id"]
            log[f"upload retried after HTTP {r.status}"] += 1
            if r.status < 429:
                raise AssertionError(f"upload refused: {r.status} {answer[:200]!r}")
        except OSError as e:
            log[f"upload retried after {type(e).__name__}"] += 1
        time.sleep(1)
    raise AssertionError("an upload never got through")


def job_of(stack, token, job_id):
    try:
        status, body, _ = e2e_test.http("GET", f"{stack.gateway}/jobs/{job_id}", token=token, timeout=10)
        return json.loads(body) if status == 200 else None
    except (OSError, ValueError):
        return None


def dead_letters(stack, node="rabbitmq"):
    """The messages in every .dead queue, as the stack's RabbitMQ node in {var}/<node> counts them."""
    status, out = servers.rabbitmqctl(os.path.join(stack.var, node), "list_queues", "name", "messages")
    if status != 0:
        raise AssertionError("rabbitmqctl list_queues: " + out)
    total = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith(".dead") and parts[1].isdigit():
            total += int(parts[1])
    return total


class Outcome:
    """settle()'s findings: done and failed jobs as (user, path, job_id), MP3s of the wrong length, duplicates."""

    def __init__(self):
        self.done, self.failed, self.wrong_length = [], [], []
        self.duplicate_mails = self.duplicate_webhooks = 0


def settle(stack, tokens, jobs, lengths, work, timeout=900):
    """Waits for every job of jobs ((user, path, job_id)) to end; downloads each MP3 that is done and compares its
    length with its source's (lengths[path], within 0.1 s); waits for one e-mail and one webhook per done job, then 5 s
    more for late duplicates, and counts those."""
    outcome = Outcome()
    for user, path, job_id in jobs:
        job = e2e_test.eventually(lambda: (lambda j: j if j and j["status"] in ("done", "failed") else None)(
            job_of(stack, tokens[user], job_id)), timeout, f"job {job_id}")
        (outcome.done if job["status"] == "done" else outcome.failed).append((user, path, job_id))
    for user, path, job_id in outcome.done:
        out = os.path.join(work, job_id + ".mp3")
        status, body, _ = e2e_test.http("GET", f"{stack.gateway}/jobs/{job_id}/mp3", token=tokens[user])
        with open(out, "wb") as f:
            f.write(body)
        seconds = float(e2e_test.probe(out)["format"]["duration"]) if status == 200 else -1
        if abs(seconds - lengths[path]) > 0.1:
            outcome.wrong_length.append((job_id, seconds, lengths[path]))
    ids = [j for _, _, j in outcome.done]

    def mails_by_job():
        return collections.Counter(j for m in stack.mails() for j in ids
                                   if j in json.dumps(m.get("headers", {})) or j in m.get("text", ""))
    e2e_test.eventually(lambda: all(mails_by_job()[j] for j in ids), 600, "an e-mail for every job")
    e2e_test.eventually(lambda: all(Hooks.received[j] for j in ids), 600, "a webhook for every job")
    time.sleep(5)  # late duplicates, if any, have the time to arrive
    mails = mails_by_job()
    outcome.duplicate_mails = sum(max(0, mails[j] - 1) for j in ids)
    outcome.duplicate_webhooks = sum(max(0, Hooks.received[j] - 1) for j in ids)
    return outcome


def through(stack, token, path, hook, log, what):
    """One more upload, which must be done within two minutes (after the faults: the system has healed)."""
    job_id = upload(stack, token, path, hook, log)
    e2e_test.eventually(lambda: (job_of(stack, token, job_id) or {}).get("status") == "done", 120, what)


def report(prefix, jobs, outcome, letters, log, extra):
    """Prints the retried uploads, the failed and wrong jobs, and the last line: `<prefix>: jobs=N done=N lost=L
    duplicate_mails=D duplicate_webhooks=W dead_letters=X <extra>`. True when nothing was lost, wrong, duplicated or
    dead-lettered."""
    print(f"{prefix}: uploads retried: {dict(log)}")
    for name, items in (("failed", outcome.failed), ("wrong length", outcome.wrong_length)):
        for item in items[:10]:
            print(f"{prefix}: {name}: {item}")
    lost = len(jobs) - len(outcome.done)
    print(f"{prefix}: jobs={len(jobs)} done={len(outcome.done)} lost={lost} duplicate_mails={outcome.duplicate_mails} "
          f"duplicate_webhooks={outcome.duplicate_webhooks} dead_letters={letters} {extra}")
    return (lost == 0 and not outcome.wrong_length and letters == 0
            and outcome.duplicate_mails + outcome.duplicate_webhooks == 0)
