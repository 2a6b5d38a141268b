"""Driven by bench/auth-login-timing inside scripts/with-servers (which provides MP3C_TEST_MYSQL_*)."""
import base64, http.client, json, os, secrets, socket, statistics, subprocess, sys, time

ROUNDS = int(sys.argv[1])
BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "release", "bin")
db = "bench_" + secrets.token_hex(4)
admin_env = dict(os.environ, MYSQL_PWD=os.environ["MP3C_TEST_MYSQL_PASSWORD"])
subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", os.environ["MP3C_TEST_MYSQL_PORT"],
                "-u", os.environ["MP3C_TEST_MYSQL_USER"], "-e", f"CREATE DATABASE {db}"], check=True, env=admin_env)

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
env = dict(os.environ, MYSQL_HOST="127.0.0.1", MYSQL_PORT=os.environ["MP3C_TEST_MYSQL_PORT"],
           MYSQL_USER=os.environ["MP3C_TEST_MYSQL_USER"], MYSQL_PASSWORD=os.environ["MP3C_TEST_MYSQL_PASSWORD"],
           MYSQL_DB=db, JWT_SECRET=secrets.token_hex(32), PORT=str(port), BIND_ADDRESS="127.0.0.1",
           LOGIN_MAX_FAILURES_PER_ACCOUNT="1000000", LOGIN_MAX_FAILURES_PER_CLIENT="1000000", LOG_LEVEL="warn")
subprocess.run([os.path.join(BIN, "mp3converter-admin"), "user", "add", "--email", "bench@example.com"],
               input=b"bench-password\n", check=True, env=env, stdout=subprocess.DEVNULL)
auth = subprocess.Popen([os.path.join(BIN, "auth")], env=env, stderr=subprocess.DEVNULL)
try:
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/readyz")
            if c.getresponse().status == 200: break
        except OSError: pass
        time.sleep(0.05)

    def login(user, password):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        auth_header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        start = time.perf_counter()
        c.request("POST", "/login", headers={"Authorization": auth_header})
        r = c.getresponse(); r.read()
        return time.perf_counter() - start, r.status

    cases = {"unknown user": ("nobody@example.com", "bench-password"),
             "wrong password": ("bench@example.com", "not-the-password"),
             "success": ("bench@example.com", "bench-password")}
    for user, pw in cases.values(): login(user, pw)  # warm-up
    times = {k: [] for k in cases}
    for _ in range(ROUNDS):  # interleaved, so drift affects every case alike
        for name, (user, pw) in cases.items():
            t, status = login(user, pw)
            assert status == (200 if name == "success" else 401), (name, status)
            times[name].append(t)
    print(f"POST /login latency over {ROUNDS} rounds (argon2id, libsodium interactive cost):")
    for name, ts in times.items():
        ts.sort()
        print(f"  {name:15s} median {statistics.median(ts)*1000:7.1f} ms   p90 {ts[int(len(ts)*0.9)-1]*1000:7.1f} ms")
    ratio = statistics.median(times["unknown user"]) / statistics.median(times["wrong password"])
    print(f"ratio unknown-user / wrong-password (median): {ratio:.3f}")
finally:
    auth.terminate(); auth.wait(30)
