"""Driven by bench/zip-download inside scripts/with-servers (which provides MP3C_TEST_MYSQL_* and MP3C_TEST_AMQP_URL).

Times GET /jobs.zip?status=done of the release gateway (COUNT done jobs of SIZE_MIB MiB each, in its file:// store,
recorded in MariaDB) against Info-ZIP's `zip -0` (stored, like the gateway) of the same files to standard output, the
two alternately ROUNDS times, and prints the median of each, their throughput and the ratio gateway/zip. Both read
files that are in the page cache (written just before), and both compute a CRC-32 per file; the gateway also sends
the archive over loopback HTTP to curl, which writes it to /dev/null, as zip's output goes to /dev/null.
The gateway's archive is checked once with Python's zipfile (names, CRCs).
Usage: python3 bench/zip_download.py COUNT SIZE_MIB ROUNDS
"""
import base64, hashlib, hmac, json, os, secrets, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.request, zipfile

COUNT, SIZE, ROUNDS = int(sys.argv[1]), int(sys.argv[2]) << 20, int(sys.argv[3])
ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
GATEWAY = os.path.join(ROOT, "build", "release", "bin", "gateway")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(secret, user_id, email):
    now = int(time.time())
    parts = [b64url(json.dumps(x, separators=(",", ":")).encode()) for x in
             ({"alg": "HS256", "typ": "JWT"}, {"username": email, "sub": str(user_id), "iat": now, "exp": now + 3600})]
    signing_input = ".".join(parts)
    return signing_input + "." + b64url(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def mariadb(sql, db=None):
    env = dict(os.environ, MYSQL_PWD=os.environ["MP3C_TEST_MYSQL_PASSWORD"])
    args = ["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", os.environ["MP3C_TEST_MYSQL_PORT"],
            "-u", os.environ["MP3C_TEST_MYSQL_USER"], "-N", "-e", sql] + ([db] if db else [])
    return subprocess.run(args, check=True, env=env, capture_output=True, text=True).stdout


def wait_until(check, what, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"zip-download: {what} not ready after {seconds} s")


def main():
    base = tempfile.mkdtemp(prefix="mp3c-bench-zip-")
    gateway = None
    try:
        db, secret, port = "bench_zip_" + secrets.token_hex(4), secrets.token_hex(32), free_port()
        mariadb(f"CREATE DATABASE {db}")
        storage = os.path.join(base, "storage")
        env = dict(os.environ, PORT=str(port), ADMIN_PORT="0", BIND_ADDRESS="127.0.0.1", MYSQL_HOST="127.0.0.1",
                   MYSQL_PORT=os.environ["MP3C_TEST_MYSQL_PORT"], MYSQL_USER=os.environ["MP3C_TEST_MYSQL_USER"],
                   MYSQL_PASSWORD=os.environ["MP3C_TEST_MYSQL_PASSWORD"], MYSQL_DB=db, JWT_SECRET=secret,
                   STORAGE_URL="file://" + storage, AMQP_URL=os.environ["MP3C_TEST_AMQP_URL"],
                   AMQP_NAME_PREFIX="bench-zip-" + secrets.token_hex(4) + ".", ZIP_MAX_BYTES=str(COUNT * SIZE + 1),
                   LOG_LEVEL="warn")
        log = open(os.path.join(base, "gateway.log"), "wb")
        gateway = subprocess.Popen([GATEWAY], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200,
                   "the gateway", 60)
        # COUNT done jobs of user 1, their MP3s written straight into the store's layout.
        files, rows = [], []
        for i in range(COUNT):
            fid = secrets.token_hex(12)
            directory = os.path.join(storage, "mp3s", fid[:2])
            os.makedirs(directory, exist_ok=True)
            path = os.path.join(directory, fid)
            data = os.urandom(SIZE)
            with open(path, "wb") as f:
                f.write(data)
            with open(path + ".json", "w") as f:
                json.dump({"id": fid, "size": SIZE, "sha256": hashlib.sha256(data).hexdigest(),
                           "content_type": "audio/mpeg", "filename": f"track{i}.mp3", "owner": "1",
                           "created_ms": int(time.time() * 1000)}, f)
            files.append(path)
            rows.append(f"('{fid}', 1, 'bench@example.com', 'track{i}.mp4', 1, 'done', 100, '{{}}', 'bench', '{fid}',"
                        f" {SIZE}, CURRENT_TIMESTAMP(3))")
        mariadb("INSERT INTO jobs (id, owner_id, owner_email, filename, size, status, progress, options, trace_id,"
                " mp3_fid, mp3_size, finished_at) VALUES " + ", ".join(rows), db)
        token = make_jwt(secret, 1, "bench@example.com")
        url = f"http://127.0.0.1:{port}/jobs.zip?status=done"
        check = os.path.join(base, "check.zip")
        subprocess.run(["curl", "-sf", "-o", check, "-H", f"Authorization: Bearer {token}", url], check=True)
        with zipfile.ZipFile(check) as z:
            if z.testzip() is not None or sorted(z.namelist()) != sorted(f"track{i}.mp3" for i in range(COUNT)):
                raise SystemExit("zip-download: the gateway's archive is wrong")
        os.unlink(check)
        gateway_cmd = ["curl", "-sf", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}", url]
        zip_cmd = ["sh", "-c", 'exec zip -0 -q -j - "$@" > /dev/null', "zip"] + files
        times = {"gateway": [], "zip": []}
        for _ in range(ROUNDS):
            for name, cmd in (("gateway", gateway_cmd), ("zip", zip_cmd)):
                start = time.perf_counter()
                subprocess.run(cmd, check=True)
                times[name].append(time.perf_counter() - start)
        mib = COUNT * SIZE / (1 << 20)
        g, z = statistics.median(times["gateway"]), statistics.median(times["zip"])
        print(f"zip-download: {COUNT} MP3s x {SIZE >> 20} MiB, {ROUNDS} rounds, medians:")
        for label, name, median in (("gateway GET /jobs.zip", "gateway", g), ("zip -0 to stdout", "zip", z)):
            print(f"  {label:22} {median:.3f} s ({mib / median:.0f} MiB/s)  min {min(times[name]):.3f}"
                  f" max {max(times[name]):.3f}")
        print(f"  ratio gateway/zip (time): {g / z:.2f}")
    finally:
        if gateway:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


main()
