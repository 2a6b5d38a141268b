"""The auth service as the auth benchmarks run it: the release binary on a fresh database of the harness's MariaDB
(scripts/with-servers provides MP3C_TEST_MYSQL_*), on a free port, with one user added by mp3converter-admin."""
import http.client, os, secrets, socket, subprocess, time

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "release", "bin")


def create_database(prefix="bench_"):
    """A fresh database on the harness's MariaDB; its name."""
    db = prefix + secrets.token_hex(4)
    admin_env = dict(os.environ, MYSQL_PWD=os.environ["MP3C_TEST_MYSQL_PASSWORD"])
    subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P",
                    os.environ["MP3C_TEST_MYSQL_PORT"], "-u", os.environ["MP3C_TEST_MYSQL_USER"], "-e",
                    f"CREATE DATABASE {db}"], check=True, env=admin_env)
    return db


def start_auth(user, password, **settings):
    """Starts auth with the settings given (environment variables) and waits until it is ready: (port, process)."""
    db = create_database()
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    env = dict(os.environ, MYSQL_HOST="127.0.0.1", MYSQL_PORT=os.environ["MP3C_TEST_MYSQL_PORT"],
               MYSQL_USER=os.environ["MP3C_TEST_MYSQL_USER"], MYSQL_PASSWORD=os.environ["MP3C_TEST_MYSQL_PASSWORD"],
               MYSQL_DB=db, JWT_SECRET=secrets.token_hex(32), PORT=str(port), ADMIN_PORT="0", BIND_ADDRESS="127.0.0.1",
               AMQP_NAME_PREFIX=db + ".", LOG_LEVEL="warn")
    env.update(settings)  # may replace the defaults above (JWT_SECRET, for a gateway that verifies the tokens)
    subprocess.run([os.path.join(BIN, "mp3converter-admin"), "user", "add", "--email", user],
                   input=(password + "\n").encode(), check=True, env=env, stdout=subprocess.DEVNULL)
    auth = subprocess.Popen([os.path.join(BIN, "auth")], env=env, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return port, auth
        except OSError:
            pass
        time.sleep(0.05)
    auth.terminate()
    raise RuntimeError("auth did not become ready")
