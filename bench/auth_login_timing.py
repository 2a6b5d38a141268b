"""Driven by bench/auth-login-timing inside scripts/with-servers (which provides MP3C_TEST_MYSQL_*)."""
import base64, http.client, statistics, sys, time

from auth_bench import start_auth

ROUNDS = int(sys.argv[1])
port, auth = start_auth("bench@example.com", "bench-password", LOGIN_MAX_FAILURES_PER_ACCOUNT="1000000",
                        LOGIN_MAX_FAILURES_PER_CLIENT="1000000")
try:
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
