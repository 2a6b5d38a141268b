"""bench/login-flood: GET /jobs latency of a signed-in user, quiet and under a flood of 300 concurrent sign-ins."""
import asyncio, base64, http.client, json, os, secrets, signal, socket, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from auth_bench import BIN, create_database, start_auth  # noqa: E402

FLOOD = 300
# The system under test and the attacker must not share a core (a Python client flooding at full speed would measure
# its own CPU use): the gateway and the measuring client on the first core, auth and the flood on the others (auth is
# its own pod, often on another node). Both phases run pinned the same way. On one core, everything shares it.
CORES = sorted(os.sched_getaffinity(0))
SERVICE_CORES = set(CORES[:1])
ATTACKER_CORES = set(CORES[1:]) or set(CORES)
USER, PASSWORD = "bench@example.com", "bench-password-0123456789"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port


def status(port, method, path, headers=None, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def start_gateway(auth_port, jwt_secret, **settings):
    db = create_database("bench_flood_")
    port = free_port()
    storage = f"/tmp/{db}"
    env = dict(os.environ, PORT=str(port), ADMIN_PORT="0", BIND_ADDRESS="127.0.0.1", MYSQL_HOST="127.0.0.1",
               MYSQL_PORT=os.environ["MP3C_TEST_MYSQL_PORT"], MYSQL_USER=os.environ["MP3C_TEST_MYSQL_USER"],
               MYSQL_PASSWORD=os.environ["MP3C_TEST_MYSQL_PASSWORD"], MYSQL_DB=db, JWT_SECRET=jwt_secret,
               AUTH_SVC_ADDRESS=f"127.0.0.1:{auth_port}", STORAGE_URL="file://" + storage,
               AMQP_URL=os.environ["MP3C_TEST_AMQP_URL"], AMQP_NAME_PREFIX=db + ".", LOG_LEVEL="warn", **settings)
    p = subprocess.Popen([os.path.join(BIN, "gateway")], env=env, stderr=subprocess.DEVNULL,
                         preexec_fn=pinned(SERVICE_CORES))
    for _ in range(400):
        try:
            if status(port, "GET", "/readyz")[0] == 200:
                return port, p, storage
        except OSError:
            pass
        time.sleep(0.05)
    p.terminate()
    raise RuntimeError("the gateway did not become ready")


def sample_jobs(port, token, n):
    """n GET /jobs on one keep-alive connection, 20 ms apart; latencies in ms."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("GET", "/jobs", headers={"Authorization": "Bearer " + token})
        r = c.getresponse(); r.read()
        out.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            raise RuntimeError(f"GET /jobs answered {r.status}")
        time.sleep(0.02)
    return out


async def one_login(port, counts):
    credentials = base64.b64encode(f"nobody-{secrets.token_hex(4)}@example.com:wrong".encode()).decode()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"POST /login HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {credentials}\r\n"
                      "Content-Length: 0\r\nConnection: close\r\n\r\n").encode())
        await writer.drain()
        line = await reader.readline()
        await reader.read()
        writer.close()
        code = line.split()[1].decode() if len(line.split()) > 1 else "?"
    except OSError:
        code = "error"
    counts[code] = counts.get(code, 0) + 1


async def flood(port, stop, counts):
    """FLOOD sign-ins in flight at all times until stop is set."""
    async def worker():
        while not stop.is_set():
            await one_login(port, counts)
    await asyncio.gather(*(worker() for _ in range(FLOOD)))


def run_flood(port):
    """The flood as its own process (`login_flood.py --flood PORT`), on the attacker's core: until SIGTERM, then
    prints the answers' status counts as JSON."""
    counts = {}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    asyncio.run(flood(port, stop, counts))
    print(json.dumps(counts), flush=True)


def measure(port, token, n, with_flood):
    if not with_flood:
        return sample_jobs(port, token, n), {}
    flooder = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--flood", str(port)],
                               stdout=subprocess.PIPE, preexec_fn=pinned(ATTACKER_CORES))
    time.sleep(2)  # the flood reaches its steady state
    try:
        return sample_jobs(port, token, n), None
    finally:
        flooder.send_signal(signal.SIGTERM)
        out, _ = flooder.communicate(timeout=60)
        measure.counts = json.loads(out.decode() or "{}")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def pinned(cores):
    return lambda: os.sched_setaffinity(0, cores)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--flood":
        run_flood(int(sys.argv[2]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    os.sched_setaffinity(0, SERVICE_CORES)  # the client that measures sits with the gateway
    jwt_secret = secrets.token_hex(32)
    auth_port, auth = start_auth(USER, PASSWORD, JWT_SECRET=jwt_secret, AMQP_URL=os.environ["MP3C_TEST_AMQP_URL"])
    children = [auth]
    subprocess.run(["taskset", "-a", "-p", "-c", ",".join(map(str, sorted(ATTACKER_CORES))), str(auth.pid)],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        print(f"login-flood: {n} GET /jobs per phase; {FLOOD} sign-ins in flight during the floods; "
              f"{os.cpu_count()} cores", flush=True)
        # One token for both phases, from auth itself before any flood (auth's own throttle then counts the flood's
        # failures against the gateway's address, which would refuse a later sign-in).
        code, body = status(auth_port, "POST", "/login", {"Authorization": "Basic " + base64.b64encode(
            f"{USER}:{PASSWORD}".encode()).decode()})
        if code != 200:
            raise RuntimeError(f"sign-in answered {code}: {body[:200]!r}")
        token = body.decode().strip()
        results = []
        for label, settings in (("default limits (LOGIN_RATE_PER_MINUTE=20)", {}),
                                ("no per-address limit (LOGIN_RATE_PER_MINUTE=0)", {"LOGIN_RATE_PER_MINUTE": "0"})):
            port, gateway, _ = start_gateway(auth_port, jwt_secret, **settings)
            children.append(gateway)
            quiet, _ = measure(port, token, n, False)
            loud, _ = measure(port, token, n, True)
            counts = measure.counts
            ratio = pct(loud, 99) / pct(quiet, 99)
            results.append(ratio)
            print(f"\n{label}")
            print(f"  quiet:  p50 {pct(quiet, 50):7.2f} ms   p99 {pct(quiet, 99):7.2f} ms")
            print(f"  flood:  p50 {pct(loud, 50):7.2f} ms   p99 {pct(loud, 99):7.2f} ms   "
                  f"sign-ins answered: {dict(sorted(counts.items()))}")
            print(f"  p99 ratio flood/quiet: {ratio:.2f} (target <= 2)", flush=True)
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(30)
            children.remove(gateway)
        print(f"\nlogin-flood: p99 ratio with the default limits {results[0]:.2f} (target <= 2); "
              f"with the per-address limit off {results[1]:.2f} (information: auth's own throttle answers, and auth's "
              f"writes to the shared MariaDB slow the job list)")
    finally:
        for c in children:
            c.terminate()
            try:
                c.wait(20)
            except subprocess.TimeoutExpired:
                c.kill()


if __name__ == "__main__":
    main()
