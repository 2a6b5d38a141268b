"""Driven by bench/load-upload: many clients uploading at once through the whole stack, then downloading.

Starts its own stack (scripts/stack on free ports in a temporary directory, as the end-to-end test does: MariaDB,
RabbitMQ, maildev, auth, the gateway, two converters, notification), signs up USERS users through the public API
(the mailed link included), and then CLIENTS threads at once each upload one file (real multipart over HTTP/1.1:
small, a 2 s WAV; or medium, a 20 s 320x240 H.264 MP4), wait for its job to be done and download its MP3, checking
its size against the job's. A 429 from the per-user limits is not an error: it must carry Retry-After, and the client
waits that long and tries again (counted apart). Everything else that is not the expected answer is an error, by kind.
While it runs, the gateway's resident memory and open file descriptors are sampled every 100 ms.

Usage: python3 bench/load_upload.py CLIENTS USERS. Last line:
load: clients=N errors=E p50_ms=... p99_ms=... rss_mib=...
"""
import collections, concurrent.futures, http.client, json, os, secrets, shutil, statistics, sys, tempfile, threading
import time, urllib.parse

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import e2e_test  # noqa: E402  (its Stack, http and make_media)

def register(stack, email, password):
    status, body, _ = e2e_test.http("POST", stack.gateway + "/register",
                                    body=json.dumps({"email": email, "password": password}).encode(),
                                    headers={"Content-Type": "application/json"})
    assert status == 202, body

    def link():
        for m in stack.mails():
            if any(t.get("address") == email for t in m.get("to", [])):
                for word in m.get("text", "").split():
                    if "/verify?token=" in word:
                        return word
        return None
    url = e2e_test.eventually(link, 120, f"the sign-up mail to {email}")
    status, body, _ = e2e_test.http("GET", url, headers={"Accept": "application/json"})
    assert status == 200, body
    status, body, _ = e2e_test.http("POST", stack.gateway + "/login", basic=(email, password))
    assert status == 200, body
    return body.decode().strip()


def multipart(path):
    boundary = "----mp3cLoad" + secrets.token_hex(8)
    with open(path, "rb") as f:
        data = f.read()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{os.path.basename(path)}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    return boundary, head + data + f"\r\n--{boundary}--\r\n".encode()


class Client:
    def __init__(self, port, token, path, errors, limited):
        self.port, self.token, self.path, self.errors, self.limited = port, token, path, errors, limited

    def request(self, method, target, body=None, headers=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = {"Authorization": "Bearer " + self.token, **(headers or {})}
            c.request(method, target, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()

    def run(self):
        """(upload-accepted ms, done ms) or None after recording the error."""
        boundary, body = multipart(self.path)
        started = time.monotonic()
        for _ in range(200):
            try:
                status, answer, headers = self.request("POST", "/upload", body,
                                                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            except OSError as e:
                self.errors[f"upload: {type(e).__name__}"] += 1
                return None
            if status != 429:
                break
            if "retry-after" not in headers:
                self.errors["429 without Retry-After"] += 1
                return None
            self.limited[json.loads(answer).get("error", "?")] += 1
            time.sleep(min(float(headers["retry-after"]), 5))
        if status != 202:
            self.errors[f"upload: HTTP {status} {answer[:60]!r}"] += 1
            return None
        accepted = time.monotonic()
        job_id = json.loads(answer)["job_id"]
        while True:
            status, answer, _ = self.request("GET", f"/jobs/{job_id}")
            job = json.loads(answer) if status == 200 else {"status": f"HTTP {status}"}
            if job["status"] == "done":
                break
            if job["status"] not in ("queued", "processing"):
                self.errors[f"job: {job['status']} {job.get('error', '')}"[:80]] += 1
                return None
            if time.monotonic() - accepted > 600:
                self.errors["job: not done within 10 minutes"] += 1
                return None
            time.sleep(0.5)
        done = time.monotonic()
        status, mp3, _ = self.request("GET", f"/jobs/{job_id}/mp3")
        if status != 200 or len(mp3) != job.get("mp3_size", len(mp3)) or not mp3:
            self.errors[f"download: HTTP {status}, {len(mp3)} bytes"] += 1
            return None
        return (accepted - started) * 1000, (done - started) * 1000


def gateway_pid(stack):
    pids = [p for p in stack.pid_of(os.path.join(e2e_test.BIN, "gateway")) if stack.var in open(
        f"/proc/{p}/environ", "rb").read().decode(errors="replace")]
    return pids[0]


def sample(pid, stop, peaks):
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        peaks["rss_kib"] = max(peaks["rss_kib"], int(line.split()[1]))
            peaks["fds"] = max(peaks["fds"], len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            pass
        stop.wait(0.1)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def main():
    CLIENTS, USERS = int(sys.argv[1]), int(sys.argv[2])
    stack = e2e_test.Stack()
    work = tempfile.mkdtemp(prefix="mp3c-load-")
    try:
        t = time.monotonic()
        stack.run("start", timeout=600)
        print(f"load: stack started in {time.monotonic() - t:.0f} s", flush=True)
        small = e2e_test.make_media(os.path.join(work, "small.wav"), seconds=2, video=False)
        medium = e2e_test.make_media(os.path.join(work, "medium.mp4"), seconds=20)
        tokens = [register(stack, f"load{i}-{os.getpid()}@example.com", "load-password-1") for i in range(USERS)]
        print(f"load: {USERS} users signed up; files {os.path.getsize(small) // 1024} KiB and "
              f"{os.path.getsize(medium) // 1024} KiB", flush=True)
        port = urllib.parse.urlparse(stack.gateway).port
        pid = gateway_pid(stack)
        errors, limited = collections.Counter(), collections.Counter()
        peaks = {"rss_kib": 0, "fds": 0}
        stop = threading.Event()
        sampler = threading.Thread(target=sample, args=(pid, stop, peaks))
        sampler.start()
        clients = [Client(port, tokens[i % USERS], small if i % 3 else medium, errors, limited) for i in range(CLIENTS)]
        t = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            results = [r for r in pool.map(lambda c: c.run(), clients) if r]
        took = time.monotonic() - t
        stop.set()
        sampler.join()
        accepted = [r[0] for r in results]
        done = [r[1] for r in results]
        print(f"load: {len(results)} of {CLIENTS} clients uploaded, saw their job done and downloaded the MP3 in "
              f"{took:.0f} s; 429s from the limits, waited out: {dict(limited) or 'none'}")
        for kind, n in errors.most_common():
            print(f"load: error x{n}: {kind}")
        print(f"load: upload accepted p50 {percentile(accepted, 50):.0f} ms, p99 {percentile(accepted, 99):.0f} ms; "
              f"job done p50 {percentile(done, 50):.0f} ms, p99 {percentile(done, 99):.0f} ms; gateway peak "
              f"{peaks['rss_kib'] / 1024:.0f} MiB RSS, {peaks['fds']} open file descriptors")
        print(f"load: clients={CLIENTS} errors={sum(errors.values())} p50_ms={percentile(accepted, 50):.0f} "
              f"p99_ms={percentile(accepted, 99):.0f} rss_mib={peaks['rss_kib'] / 1024:.0f}")
        return 0 if not errors else 1
    finally:
        stack.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
