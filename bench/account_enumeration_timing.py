"""Driven by bench/account-enumeration-timing inside scripts/with-servers (MP3C_TEST_MYSQL_*, MP3C_TEST_AMQP_URL)."""
import http.client, json, os, random, secrets, statistics, sys, time

from auth_bench import start_auth

ROUNDS = int(sys.argv[1])
port, auth = start_auth("taken@example.com", "bench-password", ALLOW_REGISTRATION="true",
                        ACCOUNT_MAILS_PER_HOUR="1000", AMQP_URL=os.environ["MP3C_TEST_AMQP_URL"])
try:
    def post(path, body):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start = time.perf_counter()
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = c.getresponse(); answer = r.read()
        return time.perf_counter() - start, r.status, answer

    fresh = lambda: f"new-{secrets.token_hex(6)}@example.com"
    cases = {
        "sign-up, new address": lambda: post("/register", {"email": fresh(), "password": "bench-password"}),
        "sign-up, taken address": lambda: post("/register", {"email": "taken@example.com", "password": "bench-password"}),
        "reset, known address": lambda: post("/password-reset", {"email": "taken@example.com"}),
        "reset, unknown address": lambda: post("/password-reset", {"email": fresh()}),
    }
    for run in cases.values(): run()  # warm-up
    times = {k: [] for k in cases}
    bodies = {k: set() for k in cases}
    # Interleaved in a new random order each round, so drift affects every case alike; a pause after each request lets
    # the work done after its answer (account made, mail published) finish, so each answer is timed on its own.
    for _ in range(ROUNDS):
        for name in random.sample(list(cases), len(cases)):
            t, status, answer = cases[name]()
            time.sleep(0.05)
            assert status == 202, (name, status, answer)
            times[name].append(t)
            bodies[name].add(answer)
    assert bodies["sign-up, new address"] == bodies["sign-up, taken address"], bodies
    assert bodies["reset, known address"] == bodies["reset, unknown address"], bodies
    print(f"answer latency over {ROUNDS} rounds (argon2id, libsodium interactive cost); bodies identical per pair:")
    for name, ts in times.items():
        ts.sort()
        print(f"  {name:24s} median {statistics.median(ts)*1000:7.1f} ms   p90 {ts[int(len(ts)*0.9)-1]*1000:7.1f} ms")
    m = {k: statistics.median(v) for k, v in times.items()}
    print(f"ratio sign-up new / taken (median): {m['sign-up, new address'] / m['sign-up, taken address']:.3f}")
    print(f"ratio reset known / unknown (median): {m['reset, known address'] / m['reset, unknown address']:.3f}")
finally:
    auth.terminate(); auth.wait(30)
