"""End-to-end tests of the whole system: `scripts/stack start` in a temporary directory on free ports (MariaDB,
RabbitMQ, maildev, auth, gateway, two converters, notification), then the public API as users see it: the original
tutorial's curl commands, the mp3conv client, concurrent users, faults, and a graceful stop in the middle of a job.

Run by ctest (test `e2e`, label e2e) after the dev build: the stack runs the dev preset's binaries
(MP3C_STACK_BIN, MP3C_STACK_BUILD=0). By hand: python3 tests/e2e/e2e_test.py [-k NAME].
"""
import base64, concurrent.futures, json, os, re, shutil, signal, subprocess, sys, tempfile, time, unittest, zipfile
import urllib.error, urllib.request

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.environ.get("MP3C_STACK_BIN", os.path.join(ROOT, "build", "dev", "bin"))
STACK = os.path.join(ROOT, "scripts", "stack")
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from mp3c_local import table  # noqa: E402  (the stack's table: its port variables, and free ports for them)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monitoring_check  # noqa: E402  (the metric names deploy/monitoring queries)


def eventually(probe, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


class Stack:
    def __init__(self, storage="file"):
        self.var = tempfile.mkdtemp(prefix="mp3c-e2e-")
        # Every port of the stack, from the harness's free_port: below the kernel's ephemeral range, so that while a
        # server of the stack is stopped (MariaDB, RabbitMQ, maildev are stopped and restarted here) no outgoing
        # connection of another test can take its port as a local end and keep it from starting again.
        self.ports = table.free_stack_ports()
        self.env = dict(os.environ, MP3C_VAR_DIR=self.var, MP3C_STACK_BIN=BIN, MP3C_STACK_BUILD="0",
                        STACK_START_TIMEOUT="300", DIGEST_QUIET="5s", STORAGE=storage,
                        **{k: str(v) for k, v in self.ports.items()})
        for name in ("SMTP_HOST", "STORAGE_URL", "MONGODB_URI"):
            self.env.pop(name, None)
        self.gateway = f"http://127.0.0.1:{self.ports['GATEWAY_PORT']}"
        self.inbox = f"http://127.0.0.1:{self.ports['MAILDEV_PORT']}"

    def run(self, *args, check=True, timeout=600):
        r = subprocess.run([STACK, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"scripts/stack {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                                 + self.log_tail())
        return r

    def log_tail(self, n=60):
        try:
            with open(os.path.join(self.var, "log", "stack.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def log_lines(self, words, n):
        lines = self.log_tail(100000).splitlines(True)
        return "".join([line for line in lines if any(word in line for word in words)][-n:])

    def demo_credentials(self):
        with open(os.path.join(self.var, "demo-credentials")) as f:
            kv = dict(line.strip().split("=", 1) for line in f if "=" in line)
        return kv["email"], kv["password"]

    def pid_of(self, pattern):
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    def converters(self):
        """This stack's converter processes (other tests may run converters from the same binary at the same time):
        the ones whose environment names this stack's TMPDIR."""
        needle = f"TMPDIR={self.var}/tmp".encode()
        found = []
        for pid in self.pid_of(os.path.join(BIN, "converter")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.append(pid)
            except OSError:
                pass
        return found

    def destroy(self):
        """Stops the stack, kills whatever still names its directory, and removes the directory."""
        self.run("stop", check=False)
        for pid in self.pid_of(self.var):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.var, ignore_errors=True)

    def stop_maildev(self):
        """SIGTERM to this stack's maildev, as an operator stops it; the stack's supervisor starts it again."""
        needle = f"MAILDEV_MAIL_DIRECTORY={self.var}/maildev".encode()
        for pid in self.pid_of("maildev"):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    def servers(self, action, server):
        """stop/start the stack's own MariaDB or RabbitMQ with the harness's harness-ctl (same ports, same data)."""
        subprocess.run([os.path.join(ROOT, "scripts", "harness-ctl"), action, server], check=True, capture_output=True,
                       env=dict(self.env, MP3C_TEST_SERVERS_DIR=self.var), timeout=120)

    def mails(self):
        try:
            with urllib.request.urlopen(self.inbox + "/email", timeout=10) as r:
                return json.load(r)
        except (urllib.error.URLError, OSError):
            return []


def http(method, url, token=None, body=None, headers=None, basic=None, timeout=60):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if basic:
        h["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def run_in_terminal(argv, env, answers=(), interrupt_after=None, timeout=180):
    """Runs argv on a pseudo-terminal of 80 x 24, as a person at a terminal would. answers: (text seen, bytes to type)
    pairs, in order; interrupt_after: Ctrl-C once this text was seen. Returns (everything printed, exit status)."""
    import fcntl, pty, select, struct, termios
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is 80 columns wide
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execve(argv[0], argv, env)
    out, pending, interrupted = b"", list(answers), False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child is gone
                    break
                if not chunk:
                    break
                out += chunk
            text = out.decode(errors="replace")
            if pending and pending[0][0] in text:
                os.write(fd, pending.pop(0)[1])
            if interrupt_after and not interrupted and interrupt_after in text:
                os.write(fd, b"\x03")
                interrupted = True
    finally:
        # A child still running at the deadline (waiting for input that never came) is killed: the test fails with
        # what was printed instead of hanging the suite.
        reaped, status = 0, 0
        if time.monotonic() >= deadline:
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped == 0:
                os.kill(pid, signal.SIGKILL)
        if reaped == 0:
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def make_media(path, seconds=3, video=True):
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc=size=160x120:rate=10:duration={seconds}"]
    args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if video and path.endswith(".mp4"):
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]
    subprocess.run(args + [path], check=True)
    return path


def probe(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json",
                        path], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


class EndToEnd(unittest.TestCase):
    stack = None
    storage = "file"

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(cls.storage)
        cls.work = tempfile.mkdtemp(prefix="mp3c-e2e-files-")
        started = time.monotonic()
        cls.stack.run("start", timeout=600)
        print(f"e2e: stack started in {time.monotonic() - started:.1f} s", file=sys.stderr)
        cls.email, cls.password = cls.stack.demo_credentials()

    @classmethod
    def tearDownClass(cls):
        if cls.stack:
            cls.stack.destroy()
        shutil.rmtree(cls.work, ignore_errors=True)

    def login(self, email=None, password=None):
        status, body, _ = http("POST", self.stack.gateway + "/login", basic=(email or self.email,
                                                                          password or self.password))
        self.assertEqual(status, 200, body)
        return body.decode().strip()

    def link_mailed_to(self, email, pattern):
        """The first link matching pattern in a mail to email (maildev), waiting for it."""
        def find():
            for m in self.stack.mails():
                if any(t.get("address") == email for t in m.get("to", [])):
                    found = re.search(pattern, m.get("text", ""))
                    if found:
                        return found.group(0)
            return None
        return eventually(find, 60, f"a mail to {email} with {pattern}")

    def register(self, email, password="e2e-password-1"):
        """Signs up as a person does: the answer, the mail in maildev, its link, then sign-in."""
        status, body, _ = http("POST", self.stack.gateway + "/register",
                               body=json.dumps({"email": email, "password": password}).encode(),
                               headers={"Content-Type": "application/json"})
        self.assertEqual(status, 202, body)
        link = self.link_mailed_to(email, r"https?://\S+/verify\?token=[A-Za-z0-9_-]+")
        status, body, _ = http("GET", link, headers={"Accept": "application/json"})
        self.assertEqual(status, 200, body)
        return self.login(email, password)

    def curl_upload(self, token, path, refusals=None):
        """Uploads as a well-behaved client: a 429 (a per-user limit) is tried again after its Retry-After."""
        for _ in range(60):
            r = subprocess.run(["curl", "-s", "-X", "POST", "-F", f"file=@{path}", "-H", f"Authorization: Bearer {token}",
                                "-D", "-", "-o", "/dev/stderr", self.stack.gateway + "/upload"],
                               capture_output=True, text=True, check=True)
            answer = json.loads(r.stderr)
            statuses = re.findall(r"(?m)^HTTP/1\.1 (\d+)", r.stdout)  # an interim 100 Continue may come first
            if not statuses or statuses[-1] != "429":
                return answer
            if refusals is not None:
                refusals.append(answer["limit"]["name"])
            retry = re.search(r"(?im)^retry-after:\s*(\d+)", r.stdout)
            time.sleep(int(retry.group(1)) if retry else 1)
        raise AssertionError("the upload was refused 60 times")

    def job(self, token, job_id):
        status, body, _ = http("GET", f"{self.stack.gateway}/jobs/{job_id}", token=token)
        return json.loads(body) if status == 200 else {"status": f"http {status}"}

    def wait_done(self, token, job_id, timeout=120):
        return eventually(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(self.job(token, job_id)),
                          timeout, f"job {job_id}")

    def job_ids(self, token):
        """Every job id of the token's user, newest first (all pages)."""
        ids, offset = [], 0
        while True:
            status, body, _ = http("GET", f"{self.stack.gateway}/jobs?limit=100&offset={offset}", token=token)
            self.assertEqual(status, 200, body)
            page = json.loads(body)
            ids += [j["job_id"] for j in page["jobs"]]
            if page["next_offset"] is None:
                return ids
            offset = page["next_offset"]

    def mails_for(self, job_id):
        return [m for m in self.stack.mails() if job_id in json.dumps(m.get("headers", {})) or
                job_id in m.get("text", "")]

    def test_forgotten_password_is_reset_through_the_mailed_link(self):
        email = f"e2e-reset-{os.getpid()}@example.com"
        old_token = self.register(email)
        status, body, _ = http("POST", self.stack.gateway + "/password-reset", body=json.dumps({"email": email}).encode(),
                               headers={"Content-Type": "application/json"})
        self.assertEqual(status, 202, body)
        link = self.link_mailed_to(email, r"https?://\S+/#reset=[A-Za-z0-9_-]+")
        status, body, _ = http("POST", self.stack.gateway + "/password-reset/confirm",
                               body=json.dumps({"token": link.split("#reset=")[1],
                                                "new_password": "e2e-new-password"}).encode(),
                               headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        self.login(email, "e2e-new-password")
        eventually(lambda: http("GET", self.stack.gateway + "/jobs", token=old_token)[0] == 401, 30,
                   "the old token to be refused after the reset")

    # The original tutorial's three commands, verbatim in form.
    def test_original_flow_with_curl(self):
        video = make_media(os.path.join(self.work, "video.mp4"))
        r = subprocess.run(["curl", "-s", "-X", "POST", self.stack.gateway + "/login", "-u",
                            f"{self.email}:{self.password}"], capture_output=True, text=True, check=True)
        token = r.stdout.strip()
        self.assertEqual(token.count("."), 2, r.stdout)
        upload = self.curl_upload(token, video)
        job = self.wait_done(token, upload["job_id"])
        self.assertEqual(job["status"], "done", job)
        out = os.path.join(self.work, "video.mp3")
        subprocess.run(["curl", "-s", "-f", "-o", out, "-H", f"Authorization: Bearer {token}",
                        f"{self.stack.gateway}/download?fid={job['mp3_fid']}"], check=True)
        info = probe(out)
        self.assertEqual(info["streams"][0]["codec_name"], "mp3")
        self.assertAlmostEqual(float(info["format"]["duration"]), 3.0, delta=0.1)
        # The waveform the converter measured while encoding: points covering the 3 s, a sine near full scale.
        status, body, _ = http("GET", f"{self.stack.gateway}/jobs/{upload['job_id']}/waveform", token)
        self.assertEqual(status, 200, body)
        waveform = json.loads(body)
        self.assertGreaterEqual(waveform["points"], 300)
        self.assertAlmostEqual(waveform["points"] * waveform["seconds_per_point"], 3.0, delta=0.1)
        self.assertGreater(max(waveform["peaks"]), 0.05)
        mail = eventually(lambda: self.mails_for(upload["job_id"]), 30, "the e-mail")
        self.assertEqual(len(mail), 1)
        self.assertIn(f"/jobs/{upload['job_id']}/mp3", mail[0]["text"])
        self.assertEqual(mail[0]["to"][0]["address"], self.email)
        # The mail's link, opened by a browser without a token, downloads the MP3 (issue 16).
        link = re.search(r"https?://\S+/jobs/" + upload["job_id"] + r"/mp3\?signature=[0-9a-f]{64}", mail[0]["text"])
        self.assertIsNotNone(link, mail[0]["text"])
        status, body, _ = http("GET", link.group(0))
        self.assertEqual(status, 200)
        with open(out, "rb") as f:
            self.assertEqual(body, f.read())
        self.assertIn("kept until", mail[0]["text"])

    def test_job_mails_follow_the_owners_choice(self):
        """Each user chooses one mail per job, a summary per batch, or none; every mail's one-click link turns them
        off (RFC 8058), through the gateway, auth and the notification service of the stack."""
        email = f"e2e-mails-{os.getpid()}@example.com"
        token = self.register(email)
        prefs = self.stack.gateway + "/account/preferences"
        video = make_media(os.path.join(self.work, "mails.mp4"))

        first = self.curl_upload(token, video)["job_id"]
        self.wait_done(token, first)
        mail = eventually(lambda: self.mails_for(first), 30, "the job's mail")[0]
        with urllib.request.urlopen(f"{self.stack.inbox}/email/{mail['id']}/source", timeout=10) as r:
            head = r.read().decode().split("\r\n\r\n", 1)[0].replace("\r\n ", " ")  # unfolded
        self.assertIn("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click", head)
        one_click = re.search(r"\r\nList-Unsubscribe:\s*<(https?://\S+/unsubscribe\?token=[0-9]+\.[A-Za-z0-9_-]+)>",
                              head)
        self.assertIsNotNone(one_click, head)
        self.assertIn("/#unsubscribe=", mail["text"])

        # One summary for a batch of two, chosen with mp3conv.
        env = dict(os.environ, MP3CONV_SERVER=self.stack.gateway, MP3CONV_CONFIG_DIR=os.path.join(self.work, "mails"))
        mp3conv = os.path.join(BIN, "mp3conv")
        r = subprocess.run([mp3conv, "login", email], input="e2e-password-1\n", env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([mp3conv, "mails"], env=env, capture_output=True, text=True)
        self.assertEqual(r.stdout, "one e-mail per finished or failed file (each)\n", r.stderr)
        r = subprocess.run([mp3conv, "mails", "summary"], env=env, capture_output=True, text=True)
        self.assertEqual(r.stdout, "now: one summary e-mail per batch of uploads (summary)\n", r.stderr)
        status, body, _ = http("GET", prefs, token)
        self.assertEqual((status, json.loads(body)), (200, {"job_mails": "summary"}))
        batch = [self.curl_upload(token, video)["job_id"] for _ in range(2)]
        for job_id in batch:
            self.wait_done(token, job_id)

        def summary():
            found = [m for m in self.stack.mails() if any(t.get("address") == email for t in m.get("to", []))
                     and m.get("subject") == "2 files converted to MP3"]
            return found or None
        text = eventually(summary, 60, "the summary mail")[0]["text"]
        for job_id in batch:
            self.assertIn(f"/jobs/{job_id}/mp3", text)
        mine = [m for m in self.stack.mails() if any(t.get("address") == email for t in m.get("to", []))]
        self.assertEqual(len(mine), 3, "the activation, the first job's and the summary: no mail per job of the batch")

        # The mail client's one-click POST: no sign-in; then no more job mails at all.
        status, body, _ = http("POST", one_click.group(1), body=b"List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, body)
        status, body, _ = http("GET", prefs, token)
        self.assertEqual(json.loads(body), {"job_mails": "off"})
        quiet = self.curl_upload(token, video)["job_id"]
        self.wait_done(token, quiet)
        metrics = f"http://127.0.0.1:{self.stack.ports['NOTIFICATION_ADMIN_PORT']}/metrics"
        eventually(lambda: 'notification_emails_total{result="opted_out"}' in http("GET", metrics)[1].decode(), 30,
                   "the notification service's decision")
        self.assertEqual(self.mails_for(quiet), [])

    def test_every_metric_the_dashboard_and_alerts_query_is_exported(self):
        texts = [http("GET", f"http://127.0.0.1:{self.stack.ports[port]}/metrics")[1].decode()
                 for port in ("AUTH_ADMIN_PORT", "GATEWAY_ADMIN_PORT", "CONVERTER_ADMIN_PORT",
                              "NOTIFICATION_ADMIN_PORT")]
        used = monitoring_check.metric_names_used(ROOT)
        ours = [n for n in used if n.split("_")[0] in ("auth", "gateway", "converter", "notification", "http")]
        self.assertGreater(len(ours), 15, "the dashboard and the alerts query the services' own metrics")
        self.assertEqual(monitoring_check.missing_metrics(used, texts), [])

    def test_mp3conv_converts_three_files(self):
        files = [make_media(os.path.join(self.work, "one.mp4")),
                 make_media(os.path.join(self.work, "two.mkv")),
                 make_media(os.path.join(self.work, "three.wav"), video=False)]
        out_dir = os.path.join(self.work, "out")
        os.makedirs(out_dir, exist_ok=True)
        env = dict(os.environ, MP3CONV_SERVER=self.stack.gateway, MP3CONV_CONFIG_DIR=os.path.join(self.work, "cfg"))
        mp3conv = os.path.join(BIN, "mp3conv")
        # A server that cannot be reached is said so (exit 3, one line, no libcurl text), also before a password.
        down = subprocess.run([mp3conv, "--server", "http://127.0.0.1:9", "jobs"], env=env, capture_output=True,
                              text=True)
        self.assertEqual(down.returncode, 3, down.stderr)
        self.assertIn("cannot reach the server at http://127.0.0.1:9: cannot connect", down.stderr)
        self.assertEqual(len(down.stderr.strip().splitlines()), 1, down.stderr)
        down = subprocess.run([mp3conv, "--server", "http://127.0.0.1:9", "login", self.email], input="", env=env,
                              capture_output=True, text=True)
        self.assertEqual(down.returncode, 3, down.stderr)
        self.assertNotIn("Password", down.stderr)
        r = subprocess.run([mp3conv, "login", self.email], input=self.password + "\n", env=env, capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.work, "cfg", "sessions.json")) as f:
            token = json.load(f)[self.stack.gateway]["token"]
        # Options are checked before anything is uploaded: at once, with the allowed values, no job made.
        newest = self.job_ids(token)[:1]
        r = subprocess.run([mp3conv, "convert", files[0], "--bitrate", "100"], env=env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("64, 80, 96, 112, 128, 160, 192, 224, 256, 320", r.stderr)
        self.assertIn("run 'mp3conv --help' for usage", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 2, "the problem and the pointer, not the help")
        self.assertEqual(self.job_ids(token)[:1], newest)
        r = subprocess.run([mp3conv, "--json", "convert", *files, "-o", out_dir, "--bitrate", "128"], env=env,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        results = json.loads(r.stdout)
        self.assertEqual([x["status"] for x in results], ["done"] * 3, results)
        for name in ("one", "two", "three"):
            self.assertEqual(probe(os.path.join(out_dir, name + ".mp3"))["streams"][0]["codec_name"], "mp3")
        # Plain progress lines off a terminal, each job's id once uploaded, and the documented exit statuses.
        self.assertIn("done ->", r.stderr)
        self.assertIn(f"one.mp4: uploaded, job {results[0]['job_id']}", r.stderr)
        # A job named by the shortest start of its id that no other job of the user has (as in git); a start
        # several share is refused with the candidates (exit 2).
        target, ids = results[0]["job_id"], self.job_ids(token)
        unique = next(n for n in range(4, 25) if sum(i.startswith(target[:n]) for i in ids) == 1)
        r = subprocess.run([mp3conv, "status", target[:unique]], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(target, r.stdout)
        if sum(i.startswith(target[:4]) for i in ids) > 1:
            r = subprocess.run([mp3conv, "status", target[:4]], env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(target, r.stderr)
        r = subprocess.run([mp3conv, "status", "0000"], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stderr)
        # download never replaces a file: the second gets a free name (and says so), --force replaces; -o is made.
        dl = os.path.join(self.work, "dl", "nested")
        for name in ("one.mp3", "one (2).mp3"):
            r = subprocess.run([mp3conv, "download", target, "-o", dl], env=env, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.isfile(os.path.join(dl, name)), os.listdir(dl))
        self.assertIn("saving as", r.stderr)
        r = subprocess.run([mp3conv, "download", target, "-o", dl, "--force"], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(dl)), ["one (2).mp3", "one.mp3"])
        # All results at once: one by one (a second run skips what is there), and as one ZIP.
        every = os.path.join(self.work, "every")
        r = subprocess.run([mp3conv, "download", "--all", "-o", every], env=env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue({"one.mp3", "two.mp3", "three.mp3"} <= set(os.listdir(every)), os.listdir(every))
        r = subprocess.run([mp3conv, "download", "--all", "-o", every], env=env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("skip", r.stderr.lower())
        archive = os.path.join(self.work, "all.zip")
        r = subprocess.run([mp3conv, "download", "--zip", "-o", archive], env=env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with zipfile.ZipFile(archive) as z:
            self.assertIsNone(z.testzip())
            self.assertTrue({"one.mp3", "two.mp3", "three.mp3"} <= set(z.namelist()), z.namelist())
        # A failed job retried: not media, so it fails again, and mp3conv says so (exit 1).
        notes = os.path.join(self.work, "notes.mp4")
        with open(notes, "w") as f:
            f.write("not a video at all\n")
        r = subprocess.run([mp3conv, "--json", "convert", notes, "-o", out_dir], env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)
        failed = json.loads(r.stdout)[0]
        self.assertEqual(failed["status"], "failed", failed)
        r = subprocess.run([mp3conv, "retry", failed["job_id"], "--bitrate", "128", "-o", out_dir], env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("failed", r.stderr)
        bad = subprocess.run([mp3conv, "retry", results[0]["job_id"]], env=env, capture_output=True, text=True)
        self.assertEqual(bad.returncode, 5, "a done job cannot be retried: " + bad.stderr)
        bad = subprocess.run([mp3conv, "convert", os.path.join(self.work, "missing.mp4")], env=env,
                             capture_output=True, text=True)
        self.assertEqual(bad.returncode, 1, bad.stderr)
        gone = dict(env, MP3CONV_CONFIG_DIR=os.path.join(self.work, "cfg2"))
        self.assertEqual(subprocess.run([mp3conv, "jobs"], env=gone, capture_output=True).returncode, 4,
                         "no session for a server that answers")
        # logout ends the token at the server, not only here: the gateway refuses it within seconds.
        self.assertEqual(http("GET", self.stack.gateway + "/jobs", token=token)[0], 200)
        r = subprocess.run([mp3conv, "logout"], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(subprocess.run([mp3conv, "jobs"], env=env, capture_output=True).returncode, 4)
        eventually(lambda: http("GET", self.stack.gateway + "/jobs", token=token)[0] == 401, 15,
                   "the signed-out token to be refused")

    def test_chapters_split_through_the_whole_stack(self):
        """A lecture with three chapters, converted by mp3conv with --chapters split: the whole MP3 (with its
        chapters) and a folder of three parts, each as long as its chapter and tagged n/3; the job lists them, the
        mail counts them, a trimmed job's duration is the trimmed length."""
        chapters = os.path.join(self.work, "chapters.txt")
        with open(chapters, "w") as f:
            f.write(";FFMETADATA1\n" + "".join(
                f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={i * 2000}\nEND={(i + 1) * 2000}\ntitle={t}\n"
                for i, t in enumerate(["Begrüßung", "Hauptteil", "Fragen"])))
        lecture = os.path.join(self.work, "lecture.m4a")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "sine=frequency=440:duration=6", "-f", "ffmetadata", "-i", chapters, "-map", "0:a",
                        "-map_chapters", "1", "-c:a", "aac", lecture], check=True)
        out_dir = os.path.join(self.work, "split-out")
        env = dict(os.environ, MP3CONV_SERVER=self.stack.gateway, MP3CONV_CONFIG_DIR=os.path.join(self.work, "cfg-split"))
        mp3conv = os.path.join(BIN, "mp3conv")
        r = subprocess.run([mp3conv, "login", self.email], input=self.password + "\n", env=env, capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([mp3conv, "--json", "convert", lecture, "-o", out_dir, "--chapters", "split",
                            "--end", "5"], env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        job_id = json.loads(r.stdout)[0]["job_id"]
        whole = probe(os.path.join(out_dir, "lecture.mp3"))
        self.assertAlmostEqual(float(whole["format"]["duration"]), 5, delta=0.1)
        names = sorted(os.listdir(os.path.join(out_dir, "lecture")))
        self.assertEqual(names, ["01 - Begrüßung.mp3", "02 - Hauptteil.mp3", "03 - Fragen.mp3"])
        for name, seconds in zip(names, [2, 2, 1]):  # the trim at 5 s cuts the third chapter to 1 s
            part = probe(os.path.join(out_dir, "lecture", name))
            self.assertAlmostEqual(float(part["format"]["duration"]), seconds, delta=0.1, msg=name)
        r = subprocess.run([mp3conv, "status", job_id], env=env, capture_output=True, text=True)
        self.assertIn("parts     3, one per chapter", r.stdout)
        self.assertIn("Hauptteil", r.stdout)
        self.assertIn("duration  0:05", r.stdout)
        # download --all saves the parts too, and a second run skips what is there.
        all_dir = os.path.join(self.work, "split-all")
        part = os.path.join(all_dir, "lecture", "02 - Hauptteil.mp3")
        for run in range(2):
            r = subprocess.run([mp3conv, "download", "--all", "-o", all_dir], env=env, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.isfile(part), r.stderr)
        self.assertIn(f"skipped: {part} is already there with the same size", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(all_dir, "lecture", "02 - Hauptteil (2).mp3")))
        mail = eventually(lambda: self.mails_for(job_id) or None, 60, "the done mail")[0]
        self.assertIn("3 parts", mail["text"])
        self.assertIn("0:05", mail["text"], "the duration after the trim")

    def test_mp3conv_in_a_terminal(self):
        """mp3conv as a person uses it at an 80-column terminal: the password is not echoed, the progress is redrawn in
        place and never wider than the terminal (a long file name is shortened), and Ctrl-C during a conversion says
        the job goes on and how to follow it."""
        work = tempfile.mkdtemp(prefix="tty-", dir=self.work)
        env = dict(os.environ, MP3CONV_SERVER=self.stack.gateway, MP3CONV_CONFIG_DIR=os.path.join(work, "cfg"),
                   TERM="xterm")
        mp3conv = os.path.join(BIN, "mp3conv")
        out, status = run_in_terminal([mp3conv, "login", self.email], env,
                                      answers=[("assword", (self.password + "\n").encode())])
        self.assertEqual(status, 0, out)
        self.assertNotIn(self.password, out, "the password is not echoed")
        name = os.path.join(work, "A very long recording of the whole conference day, morning session.mp4")
        make_media(name, seconds=4)
        out, status = run_in_terminal([mp3conv, "convert", name, "-o", work], env)
        self.assertEqual(status, 0, out)
        self.assertIn("\r", out, "the progress is redrawn in place")
        self.assertRegex(out, r"uploaded, job [0-9a-f]{24}")
        plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out)
        for line in re.split(r"[\r\n]", plain):
            if "[" in line and "%" in line:  # a progress line
                self.assertLessEqual(len(line), 79, repr(line))
        long = make_media(os.path.join(work, "lecture.flac"), seconds=1800, video=False)
        out, status = run_in_terminal([mp3conv, "convert", long, "-o", work], env,
                                      interrupt_after="uploaded, job")
        self.assertEqual(status, 130, out)
        job_id = re.search(r"uploaded, job ([0-9a-f]{24})", out).group(1)
        self.assertIn(f"mp3conv status {job_id}", out, "how to follow the job that goes on")

    def test_mp3conv_watch(self):
        """mp3conv watch converts the files that come into a folder, once: not those there at the first start, not
        again after a restart."""
        work = tempfile.mkdtemp(prefix="watch-", dir=self.work)
        inbox, out = os.path.join(work, "inbox"), os.path.join(work, "out")  # out: made by mp3conv
        os.makedirs(inbox)
        env = dict(os.environ, MP3CONV_SERVER=self.stack.gateway, MP3CONV_CONFIG_DIR=os.path.join(work, "cfg"))
        mp3conv = os.path.join(BIN, "mp3conv")
        r = subprocess.run([mp3conv, "login", self.email], input=self.password + "\n", env=env, capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(work, "cfg", "sessions.json")) as f:
            token = json.load(f)[self.stack.gateway]["token"]
        tag = f"w{os.getpid()}"
        make_media(os.path.join(inbox, f"{tag}-old.mp4"))
        first, second, third = (make_media(os.path.join(work, f"{tag}-first.mp4")),
                                make_media(os.path.join(work, f"{tag}-second.wav"), video=False),
                                make_media(os.path.join(work, f"{tag}-third.mkv")))

        def jobs_of(stem):
            names = [n for n in os.listdir(inbox) if n.startswith(f"{tag}-{stem}.")]
            status, body, _ = http("GET", self.stack.gateway + "/jobs?limit=100", token=token)
            self.assertEqual(status, 200, body)
            return [j for j in json.loads(body)["jobs"] if j["filename"] in names]

        def start(n):
            log = open(os.path.join(work, f"watch-{n}.log"), "w+")
            self.addCleanup(log.close)
            process = subprocess.Popen([mp3conv, "watch", inbox, "-o", out, "--bitrate", "128"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=log, text=True)
            self.addCleanup(lambda: process.poll() is None and process.kill())

            def said():
                log.seek(0)
                return log.read()
            eventually(lambda: "watching" in said(), 30, "mp3conv watch to start")
            return process, said

        def stop(process, said):
            process.send_signal(signal.SIGINT)
            self.assertEqual(process.wait(timeout=30), 0, said())
            self.assertIn("stopped watching", said())

        def mp3_in_out(stem):
            path = os.path.join(out, f"{tag}-{stem}.mp3")
            return os.path.isfile(path) and path

        process, said = start(1)
        self.assertIn("left alone", said())
        for source in (first, second):
            shutil.copy(source, inbox)
        for stem in ("first", "second"):
            mp3 = eventually(lambda: mp3_in_out(stem), 180, f"the MP3 of {stem}")
            self.assertEqual(probe(mp3)["streams"][0]["codec_name"], "mp3")
        self.assertIn(f"{tag}-first.mp4: uploaded, job ", said())
        stop(process, said)
        self.assertFalse(mp3_in_out("old"), "there at the first start: left alone")
        self.assertEqual([len(jobs_of(stem)) for stem in ("old", "first", "second")], [0, 1, 1])
        with open(os.path.join(inbox, ".mp3conv-watch.json")) as f:
            state = json.load(f)["files"]
        self.assertEqual(state[f"{tag}-first.mp4"]["status"], "done", state)
        self.assertEqual(state[f"{tag}-old.mp4"]["status"], "existing", state)

        # Restarted, it converts what comes next, and nothing again.
        process, said = start(2)
        shutil.copy(third, inbox)
        eventually(lambda: mp3_in_out("third"), 180, "the MP3 of third")
        stop(process, said)
        self.assertEqual([len(jobs_of(stem)) for stem in ("old", "first", "second", "third")], [0, 1, 1, 1])
        self.assertNotIn("first", said())

    def test_smtp_catcher_down_for_a_while_then_the_mail_arrives_once(self):
        token = self.login()
        short = make_media(os.path.join(self.work, "while-down.mp4"))
        self.stack.stop_maildev()
        job_id = self.curl_upload(token, short)["job_id"]
        # Keep the catcher down for 10 s (each restart is stopped again): the mail must wait, not vanish.
        down_until = time.monotonic() + 10
        while time.monotonic() < down_until:
            self.stack.stop_maildev()
            time.sleep(0.1)
        self.assertEqual(self.wait_done(token, job_id)["status"], "done")
        def inbox_up():
            try:
                return http("GET", self.stack.inbox + "/healthz", timeout=5)[0] == 200
            except OSError:
                return False

        try:
            eventually(inbox_up, 90, "maildev to be restarted by the stack")
        except AssertionError as e:
            port = self.stack.ports["MAILDEV_PORT"]
            sockets = subprocess.run(["ss", "-tanp", f"( sport = :{port} or dport = :{port} )"],
                                     capture_output=True, text=True).stdout
            raise AssertionError(f"{e}\nthe supervisor's and maildev's lines in the stack log:\n"
                                 f"{self.stack.log_lines(('stack:', 'maildev'), 40)}"
                                 f"\nsockets on its web port {port}:\n{sockets}")
        # The notification service retries after 5 s, 30 s, then every 120 s.
        mails = eventually(lambda: self.mails_for(job_id), 180, "the e-mail after the catcher came back")
        self.assertEqual(len(mails), 1)

    def test_twenty_concurrent_uploads_from_three_users(self):
        users = [f"e2e-user{i}-{os.getpid()}@example.com" for i in range(3)]
        tokens = {u: self.register(u) for u in users}
        video = make_media(os.path.join(self.work, "many.mp4"), seconds=2)
        plan = [users[i % 3] for i in range(20)]
        refusals = []
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            uploads = list(pool.map(lambda u: (u, self.curl_upload(tokens[u], video, refusals)["job_id"]), plan))
        # Seven at once from one user: past MAX_UPLOADS_PER_USER (2) they are told to come back, and all get in.
        self.assertTrue(set(refusals) <= {"MAX_UPLOADS_PER_USER"}, refusals)
        for user, job_id in uploads:
            self.assertEqual(self.wait_done(tokens[user], job_id, 240)["status"], "done")
        for user in users:
            status, body, _ = http("GET", self.stack.gateway + "/jobs?limit=100", token=tokens[user])
            seen = {j["job_id"] for j in json.loads(body)["jobs"]}
            self.assertEqual(seen, {j for u, j in uploads if u == user}, "each user sees exactly their own jobs")
        eventually(lambda: all(len(self.mails_for(j)) >= 1 for _, j in uploads), 120, "one e-mail per job")
        for user, job_id in uploads:
            mails = self.mails_for(job_id)
            self.assertEqual(len(mails), 1, f"exactly one e-mail for {job_id}")
            self.assertEqual(mails[0]["to"][0]["address"], user)

    def test_faults_lose_nothing(self):
        token = self.login()
        long_video = make_media(os.path.join(self.work, "long.wav"), seconds=900, video=False)
        short = make_media(os.path.join(self.work, "short.mp4"))
        # kill -9 the converter that took the long job: the supervisor restarts it; the job completes once.
        long_job = self.curl_upload(token, long_video)["job_id"]
        eventually(lambda: self.job(token, long_job)["progress"] >= 3, 60, "the long job to start")
        killed = self.stack.converters()
        self.assertEqual(len(killed), 2, "both of this stack's converters")
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        self.assertEqual(self.wait_done(token, long_job, 240)["status"], "done")
        self.assertEqual(len(eventually(lambda: self.mails_for(long_job), 30, "its e-mail")), 1)

        # RabbitMQ restarts with one job running and others queued.
        running = self.curl_upload(token, long_video)["job_id"]
        queued = [self.curl_upload(token, short)["job_id"] for _ in range(3)]
        eventually(lambda: self.job(token, running)["progress"] >= 3, 60, "a running job")
        self.stack.servers("stop", "rabbitmq")
        self.stack.servers("start", "rabbitmq")
        for job_id in [running, *queued]:
            self.assertEqual(self.wait_done(token, job_id, 240)["status"], "done", job_id)

        # MariaDB down for 10 s: the API answers 503, then recovers by itself.
        self.stack.servers("stop", "mariadb")
        status, body, _ = http("GET", self.stack.gateway + "/jobs", token=token)
        self.assertEqual(status, 503, body)
        time.sleep(10)  # the outage's length is the point here, not a wait for a condition
        self.stack.servers("start", "mariadb")
        eventually(lambda: http("GET", self.stack.gateway + "/jobs", token=token)[0] == 200, 60, "the API back")
        after = self.curl_upload(token, short)["job_id"]
        self.assertEqual(self.wait_done(token, after)["status"], "done")
        self.assertEqual(len(eventually(lambda: self.mails_for(after), 60, "its e-mail")), 1)

    def test_zz_graceful_stop_mid_job_then_the_job_finishes(self):
        token = self.login()
        long_video = make_media(os.path.join(self.work, "stop.wav"), seconds=900, video=False)
        job_id = self.curl_upload(token, long_video)["job_id"]
        eventually(lambda: self.job(token, job_id)["progress"] >= 3, 60, "the job to start")
        self.stack.run("stop")
        storage = os.path.join(self.stack.var, "storage")
        partial = [os.path.join(d, f) for d, _, fs in os.walk(storage) for f in fs if f.endswith(".part")]
        self.assertEqual(partial, [], "no half-written file")
        self.assertEqual(os.listdir(os.path.join(self.stack.var, "tmp")), [])
        self.stack.run("start", timeout=600)
        token = self.login()
        self.assertEqual(self.wait_done(token, job_id, 240)["status"], "done")
        self.assertEqual(self.stack.run("status").returncode, 0)


class EndToEndOnGridFs(EndToEnd):
    """A pass on GridFS (STORAGE=gridfs: the blob stores in the MongoDB-wire test server, tools/mongo-wire, not
    mongod): the original flow, mp3conv with its downloads, and the storage server going away mid-upload."""
    storage = "gridfs"
    TESTS = ("test_original_flow_with_curl", "test_mp3conv_converts_three_files",
             "test_storage_server_stops_mid_upload")

    def test_storage_server_stops_mid_upload(self):
        token = self.login()
        big = make_media(os.path.join(self.work, "big.wav"), seconds=240, video=False)  # about 21 MB
        before = self.job_ids(token)
        # A slow upload (2 MB/s): the server stops while the gateway streams it into GridFS.
        upload = subprocess.Popen(["curl", "-s", "--limit-rate", "2M", "-X", "POST", "-F", f"file=@{big}",
                                   "-H", f"Authorization: Bearer {token}", "-w", "\n%{http_code}",
                                   self.stack.gateway + "/upload"], stdout=subprocess.PIPE, text=True)
        time.sleep(3)  # well into the upload: the outage is the point, not a condition to wait for
        self.stack.servers("stop", "mongodb")
        out, _ = upload.communicate(timeout=120)
        body, _, code = out.rpartition("\n")
        self.assertIn(code, ("503", "000"), out)  # 503 storage_unavailable, or the connection closed on the client
        if code == "503":
            self.assertEqual(json.loads(body)["error"], "storage_unavailable", body)
        self.assertEqual(self.job_ids(token), before, "no job for the failed upload")
        ready = f"http://127.0.0.1:{self.stack.ports['GATEWAY_ADMIN_PORT']}/readyz"
        self.assertEqual(http("GET", ready)[0], 503, "not ready without its storage")
        self.stack.servers("start", "mongodb")
        # Back by itself: a new upload is converted and downloaded from GridFS.
        eventually(lambda: http("GET", ready)[0] == 200, 60, "the gateway ready again")
        job = self.curl_upload(token, make_media(os.path.join(self.work, "after.mp4")))["job_id"]
        self.assertEqual(self.wait_done(token, job)["status"], "done")
        status, mp3, _ = http("GET", f"{self.stack.gateway}/jobs/{job}/mp3", token)
        self.assertEqual(status, 200)
        self.assertGreater(len(mp3), 10000)


def load_tests(loader, standard_tests, pattern):
    """Every test on the file store, then EndToEndOnGridFs's on GridFS (each class starts its own stack)."""
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(EndToEnd))
    names = loader.getTestCaseNames(EndToEndOnGridFs)  # honours -k
    suite.addTests(EndToEndOnGridFs(name) for name in EndToEndOnGridFs.TESTS if name in names)
    return suite


if __name__ == "__main__":
    unittest.main(verbosity=2)
