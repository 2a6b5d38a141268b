"""Driven by bench/gateway-upload inside scripts/with-servers (which provides MP3C_TEST_MYSQL_* and MP3C_TEST_AMQP_URL).

Uploads one file of SIZE_MIB MiB to nginx and to the gateway, alternately, ROUNDS times, with the same curl
multipart form, and prints the throughput of each, the ratio gateway/nginx and the gateway's peak RSS.
Usage: python3 bench/gateway_upload.py SIZE_MIB ROUNDS

The nginx baseline is the DAV module's PUT (built into Debian's nginx): nginx reads the whole request body into a
file under client_body_temp_path (DAV forces "client_body_in_file_only" for PUT) and only then renames it to its
place under root and answers 201 -- like the gateway, which streams the file part to a temporary file and renames it
on commit. The stored file is checked after every round to be exactly the body curl sent (so nginx did write every
byte), then deleted. Not used: "client_body_in_file_only on; return 204;", because `return` answers from the rewrite
phase and nginx then discards the body without writing anything (checked: the temp directory stays empty); and
proxy_pass, which would add a second transfer of the body to an upstream.

Differences that remain, shown but not corrected for: the gateway also parses the multipart framing, hashes the file
(SHA-256) and fsyncs it before answering, and records a job in MariaDB and publishes it to RabbitMQ; nginx stores the
raw multipart body and does not fsync. The driver fsyncs nginx's stored file after each answer and prints that time
too, so the cost of durability is visible ("nginx+fsync"). Everything is flushed with sync(2) between uploads, so one
upload's writeback does not slow the next, and then the driver waits BENCH_SETTLE_SECONDS (default 10): on this kind of
virtual machine the kernel hands freed memory back to the host about 2 s after it is freed, and filling 1 GiB of page
cache from such memory costs about 1 s more system time than reusing memory freed just before (measured: 4 GiB/s vs
0.7-1 GiB/s for plain writes). Without the pause an upload that follows another one closely got warm memory and one
that did not got cold memory (nginx measured 370 MiB/s or 1900 MiB/s for the same upload); with it every upload
starts from the same state.

Each round also shows the CPU time of the server (user + system), of curl, and of everything else on the machine
("others": another build or test run; a round where that is over 15% of the upload's time is marked BUSY MACHINE),
and the gateway's busiest threads (numbered in creation order, #0 is main()).
"""
import ctypes, hashlib, hmac, base64, json, os, resource, secrets, shutil, signal, socket, statistics, subprocess
import sys, tempfile, time, http.client

MIB = 1 << 20
SIZE = int(sys.argv[1]) * MIB
ROUNDS = int(sys.argv[2])
SETTLE_SECONDS = float(os.environ.get("BENCH_SETTLE_SECONDS", "10"))
RSS_TARGET_MIB, RATIO_TARGET = 64, 0.8
ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
GATEWAY = os.path.join(ROOT, "build", "release", "bin", "gateway")
NGINX = "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else shutil.which("nginx")
CLK = os.sysconf("SC_CLK_TCK")


class Failure(Exception):
    pass


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGHUP, on_signal)

_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():  # preexec_fn: the servers get SIGKILL if this driver dies without cleaning up
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_status(pid, key):  # in MiB, from /proc/PID/status (VmHWM = peak resident set size)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise Failure(f"no {key} for process {pid}")


def cpu_times(stat_path):  # (user, system) seconds from a /proc .../stat file
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK, int(fields[12]) / CLK


def process_cpu(pid):  # the whole process (all threads)
    return cpu_times(f"/proc/{pid}/stat")


def thread_cpu(pid):  # {tid: (user, system)}
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = cpu_times(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            pass
    return out


def machine_busy():  # CPU seconds spent by everything on the machine (all cores), from /proc/stat
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK  # user..steal, less idle and iowait


class Usage:
    """CPU used during one upload: by the server (user, sys), by curl, and by everything else on the machine (another
    build or test run on the same machine shows up there and makes the round unreliable)."""

    def __init__(self, pid):
        self.pid = pid
        self.cpu0, self.busy0, self.threads0 = process_cpu(pid), machine_busy(), thread_cpu(pid)

    def finish(self, wall, curl_cpu):
        user, system = (b - a for a, b in zip(self.cpu0, process_cpu(self.pid)))
        self.user, self.system, self.curl, self.wall = user, system, curl_cpu, wall
        self.others = max(0.0, machine_busy() - self.busy0 - user - system - curl_cpu)
        threads = thread_cpu(self.pid)
        order = sorted(set(self.threads0) | set(threads))  # thread ids grow in creation order: #0 is main()
        self.threads = sorted(((sum(threads.get(t, (0, 0))) - sum(self.threads0.get(t, (0, 0))), order.index(t),
                                *(b - a for a, b in zip(self.threads0.get(t, (0, 0)), threads.get(t, (0, 0)))))
                               for t in order), reverse=True)
        return self

    def describe(self):
        return (f"server cpu {self.user:.2f}u+{self.system:.2f}s, curl {self.curl:.2f}, others {self.others:.2f}"
                + (" BUSY MACHINE" if self.others > 0.15 * self.wall else ""))

    def busiest_threads(self, n=4):
        return ", ".join(f"#{i}{' (main)' if i == 0 else ''} {u:.2f}u+{s:.2f}s" for _, i, u, s in self.threads[:n])


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(secret, user_id, email):
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"username": email, "sub": str(user_id), "admin": False, "iat": now, "exp": now + 6 * 3600}
    signing_input = ".".join(b64url(json.dumps(x, separators=(",", ":")).encode()) for x in (header, claims))
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def make_source(path, size):
    """Pseudo-random bytes (AES-CTR keystream from openssl when present: ~2x faster than /dev/urandom)."""
    digest = hashlib.sha256()
    generator = None
    if shutil.which("openssl"):
        with open("/dev/zero", "rb") as zero:
            generator = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-nosalt", "-pbkdf2", "-pass",
                                          "pass:" + secrets.token_hex(16)], stdin=zero, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
        read = generator.stdout.read
    else:
        read = os.urandom
    try:
        with open(path, "wb") as f:
            left = size
            while left:
                block = read(min(MIB, left))
                if not block:
                    raise Failure("openssl stopped producing random bytes")
                f.write(block)
                digest.update(block)
                left -= len(block)
    finally:
        if generator:
            generator.kill()
            generator.wait()
    return digest.hexdigest()


def curl(url, *args):
    """POST/PUT with curl; returns (status, seconds, bytes sent, curl's own CPU seconds, response body)."""
    out = os.path.join(tmp, "curl-response")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(["curl", "-sS", "--max-time", "1800", "-o", out,
                        "-w", "%{http_code} %{time_total} %{size_upload}", *args, url], capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise Failure(f"curl {url} failed ({r.returncode}): {r.stderr.strip()}")
    code, seconds, sent = r.stdout.split()
    with open(out, "rb") as f:
        body = f.read()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return int(code), float(seconds), int(float(sent)), cpu, body


def wait_until(predicate, what, seconds, process=None, log=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = open(log, errors="replace").read()[-3000:] if log and os.path.exists(log) else ""
            raise Failure(f"{what} exited with status {process.returncode}\n{tail}")
        if predicate():
            return
        time.sleep(0.05)
    raise Failure(f"{what}: not ready after {seconds} s")


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def http_status(port, path, headers=None):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return None


def start_nginx(base):
    for d in ("body", "www", "logs"):
        os.makedirs(os.path.join(base, d))
    port = free_port()
    conf = os.path.join(base, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""# One process, in the foreground, private to this run (see the top of bench/gateway_upload.py).
daemon off;
master_process off;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {base}/body;
    proxy_temp_path {base}/body;
    fastcgi_temp_path {base}/body;
    uwsgi_temp_path {base}/body;
    scgi_temp_path {base}/body;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        client_body_buffer_size 256k;
        client_body_in_file_only on;
        location /upload/ {{
            root {base}/www;
            dav_methods PUT;
            create_full_put_path on;
        }}
    }}
}}
""")
    log = os.path.join(base, "logs", "stderr.log")
    with open(log, "wb") as out:
        p = subprocess.Popen([NGINX, "-p", base, "-c", conf, "-e", os.path.join(base, "logs", "error.log")],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                             preexec_fn=die_with_parent)
    children.append(p)
    wait_until(lambda: port_open(port), "nginx", 10, p, log)
    return p, port


def start_gateway(base, secret):
    db = "bench_upload_" + secrets.token_hex(4)
    admin_env = dict(os.environ, MYSQL_PWD=os.environ["MP3C_TEST_MYSQL_PASSWORD"])
    subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P",
                    os.environ["MP3C_TEST_MYSQL_PORT"], "-u", os.environ["MP3C_TEST_MYSQL_USER"],
                    "-e", f"CREATE DATABASE {db}"], check=True, env=admin_env)
    storage = os.path.join(base, "storage")
    os.makedirs(storage)
    port = free_port()
    env = dict(os.environ, PORT=str(port), ADMIN_PORT="0", BIND_ADDRESS="127.0.0.1",
               MYSQL_HOST=os.environ.get("MP3C_TEST_MYSQL_HOST", "127.0.0.1"),
               MYSQL_PORT=os.environ["MP3C_TEST_MYSQL_PORT"], MYSQL_USER=os.environ["MP3C_TEST_MYSQL_USER"],
               MYSQL_PASSWORD=os.environ["MP3C_TEST_MYSQL_PASSWORD"], MYSQL_DB=db, JWT_SECRET=secret,
               STORAGE_URL="file://" + storage, AMQP_URL=os.environ["MP3C_TEST_AMQP_URL"],
               AMQP_NAME_PREFIX="bench-upload-" + secrets.token_hex(4) + ".",
               MAX_UPLOAD_BYTES=str(max(4 << 30, 2 * SIZE)), MAX_QUEUED_JOBS="0", LOG_LEVEL="warn")
    log = os.path.join(base, "gateway.log")
    with open(log, "wb") as out:
        p = subprocess.Popen([GATEWAY], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             start_new_session=True, preexec_fn=die_with_parent)
    children.append(p)
    wait_until(lambda: http_status(port, "/readyz") == 200, "gateway", 60, p, log)
    return p, port, storage


def upload_nginx(name, source):
    usage = Usage(nginx.pid)
    # The same multipart body as for the gateway, sent with PUT for the DAV module.
    code, seconds, sent, curl_cpu, _ = curl(f"http://127.0.0.1:{nginx_port}/upload/{name}", "-X", "PUT",
                                            "-F", f"file=@{source}")
    usage.finish(seconds, curl_cpu)
    if code not in (200, 201, 204):
        raise Failure(f"nginx answered {code} to the upload")
    stored = os.path.join(nginx_base, "www", "upload", name)
    size = os.path.getsize(stored) if os.path.exists(stored) else None
    if size != sent or sent <= os.path.getsize(source):
        raise Failure(f"nginx stored {size} bytes, curl sent {sent} (file {os.path.getsize(source)})")
    fd = os.open(stored, os.O_RDONLY)
    t0 = time.perf_counter()
    os.fsync(fd)
    fsync_seconds = time.perf_counter() - t0
    os.close(fd)
    os.unlink(stored)
    if os.listdir(os.path.join(nginx_base, "body")):
        raise Failure("nginx left files in client_body_temp_path")
    return seconds, fsync_seconds, usage


def upload_gateway(source, sha256):
    usage = Usage(gateway.pid)
    code, seconds, _, curl_cpu, body = curl(f"http://127.0.0.1:{gateway_port}/upload",
                                            "-H", f"Authorization: Bearer {token}", "-F", f"file=@{source}")
    usage.finish(seconds, curl_cpu)
    if code != 202:
        raise Failure(f"gateway answered {code} to the upload: {body[:500]!r}")
    fid = json.loads(body)["video_fid"]
    data = os.path.join(storage, "videos", fid[:2], fid)
    size = os.path.getsize(data) if os.path.exists(data) else None
    if size != os.path.getsize(source):
        raise Failure(f"gateway stored {size} bytes for a file of {os.path.getsize(source)}")
    with open(data + ".json") as f:
        meta = json.load(f)
    if meta.get("sha256") != sha256:
        raise Failure(f"gateway's stored file has SHA-256 {meta.get('sha256')}, expected {sha256}")
    os.unlink(data + ".json")
    os.unlink(data)
    return seconds, usage


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


children = []
os.makedirs(os.path.join(ROOT, "build", "bench-tmp"), exist_ok=True)
tmp = tempfile.mkdtemp(prefix="gateway-upload.", dir=os.path.join(ROOT, "build", "bench-tmp"))
status = 0
try:
    if not NGINX:
        raise Failure("nginx is not installed")
    if not os.access(GATEWAY, os.X_OK):
        raise Failure(f"{GATEWAY} is missing: build the release preset")
    source = os.path.join(tmp, "upload.bin")
    t0 = time.perf_counter()
    sha256 = make_source(source, SIZE)
    made = time.perf_counter() - t0
    warm = os.path.join(tmp, "warm.bin")
    with open(source, "rb") as f, open(warm, "wb") as w:
        w.write(f.read(MIB))
    os.sync()  # the test file's own writeback must not overlap the first upload

    nginx_base = os.path.join(tmp, "nginx")
    nginx, nginx_port = start_nginx(nginx_base)
    secret = secrets.token_hex(32)
    gateway, gateway_port, storage = start_gateway(os.path.join(tmp, "gateway"), secret)
    token = make_jwt(secret, 1, "bench@example.com")
    got = http_status(gateway_port, "/jobs", {"Authorization": "Bearer " + token})
    if got != 200:
        raise Failure(f"gateway refused the benchmark's token: GET /jobs answered {got}")

    upload_nginx("warm.bin", warm)  # warm-up: connections, pools, code paths
    upload_gateway(warm, hashlib.sha256(open(warm, "rb").read()).hexdigest())
    rss_idle = proc_status(gateway.pid, "VmHWM")
    os.sync()

    mib = SIZE / MIB
    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip().replace(" version: ", " ")
    print(f"gateway upload: {mib:.0f} MiB file (pseudo-random, written in {made:.1f} s), {ROUNDS} rounds, alternating, "
          f"curl -F over loopback; baseline {version} (DAV PUT, body stored to disk)", flush=True)
    nginx_mibs, nginx_sync_mibs, gateway_mibs = [], [], []
    busy = False
    for i in range(ROUNDS):
        results = {}
        order = ("nginx", "gateway") if i % 2 == 0 else ("gateway", "nginx")
        for who in order:
            time.sleep(SETTLE_SECONDS)  # see the top of this file
            if who == "nginx":
                results[who] = upload_nginx(f"round{i + 1}.bin", source)
            else:
                results[who] = upload_gateway(source, sha256)
            os.sync()
        n_s, n_fsync, n_use = results["nginx"]
        g_s, g_use = results["gateway"]
        nginx_mibs.append(mib / n_s)
        nginx_sync_mibs.append(mib / (n_s + n_fsync))
        gateway_mibs.append(mib / g_s)
        busy = busy or n_use.others > 0.15 * n_s or g_use.others > 0.15 * g_s
        print(f"  round {i + 1} ({order[0]} first)\n"
              f"    nginx   {mib / n_s:7.1f} MiB/s  {n_s:6.2f} s  {n_use.describe()};"
              f" +fsync afterwards {n_fsync:.2f} s -> {mib / (n_s + n_fsync):.1f} MiB/s\n"
              f"    gateway {mib / g_s:7.1f} MiB/s  {g_s:6.2f} s  {g_use.describe()}\n"
              f"      busiest gateway threads (#n: n-th created): {g_use.busiest_threads()}", flush=True)

    rss_peak = proc_status(gateway.pid, "VmHWM")
    nginx_rss = proc_status(nginx.pid, "VmHWM")
    n_med, ns_med, g_med = (statistics.median(x) for x in (nginx_mibs, nginx_sync_mibs, gateway_mibs))
    ratio = g_med / n_med
    met = lambda ok: "met" if ok else "NOT met"
    print(f"median throughput: gateway {g_med:.1f} MiB/s, nginx {n_med:.1f} MiB/s"
          f" (nginx + fsync of its file afterwards: {ns_med:.1f} MiB/s)")
    print(f"ratio gateway/nginx (medians): {ratio:.3f}   target >= {RATIO_TARGET}: {met(ratio >= RATIO_TARGET)}")
    print(f"ratio gateway/(nginx + fsync) (medians): {g_med / ns_med:.3f}   (information: the gateway fsyncs before"
          f" answering, nginx does not)")
    # The gateway hashes every byte (SHA-256, one sequential stream), so the hash's speed caps it whatever else it
    # does. OpenSSL (through hashlib) runs at the speed of the gateway's own SHA-NI code on the CPUs measured.
    block = os.urandom(64 * MIB)
    hasher, t0 = hashlib.sha256(), time.perf_counter()
    for _ in range(8):
        hasher.update(block)
    sha_mibs = 8 * 64 / (time.perf_counter() - t0)
    above = " (above the hash's ceiling: out of reach)" if RATIO_TARGET * n_med > sha_mibs else ""
    print(f"SHA-256 of one stream on this machine: {sha_mibs:.0f} MiB/s, the gateway's ceiling; "
          f"{RATIO_TARGET} x nginx's median is {RATIO_TARGET * n_med:.0f} MiB/s{above}")
    print(f"gateway peak RSS (VmHWM): {rss_peak:.1f} MiB (after start-up and a 1 MiB warm-up: {rss_idle:.1f} MiB)"
          f"   target <= {RSS_TARGET_MIB} MiB: {met(rss_peak <= RSS_TARGET_MIB)}   (nginx: {nginx_rss:.1f} MiB)")
    if busy:
        print("note: other processes used the CPU during some uploads (BUSY MACHINE): the figures are unreliable;"
              " run again on an idle machine, or with more BENCH_ROUNDS")
except Failure as e:
    print(f"gateway-upload: FAILED: {e}", file=sys.stderr)
    status = 1
except KeyboardInterrupt:
    status = 130
except SystemExit as e:
    status = e.code if isinstance(e.code, int) else 1
finally:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for p in reversed(children):
        stop(p)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        os.rmdir(os.path.join(ROOT, "build", "bench-tmp"))
    except OSError:
        pass
sys.exit(status)
