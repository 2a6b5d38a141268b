"""The stack's supervisor: runs the services with their output prefixed by their coloured names, waits for each to be
ready, restarts one that exits (with backoff), and stops them in order.

One thread and one select loop: the services' output pipes, and a wake-up pipe that the signals write to (SIGCHLD
when a service exits; SIGINT, SIGTERM, SIGHUP to stop). No child is ever forgotten: each round polls every service.
"""
import os, selectors, signal, subprocess, sys, time, urllib.request

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy


def say(message):
    sys.stderr.write(f"\033[1mstack:\033[0m {message}\n")
    sys.stderr.flush()


def http_ok(url, timeout):
    """The URL answers with a status below 400 (as curl -f)."""
    try:
        with _direct.open(url, timeout=timeout) as r:
            return r.status < 400
    except Exception:  # refused, reset, timed out, HTTP error, a broken answer: all mean "not ready"
        return False


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP before the supervision loop runs."""


class Service:
    def __init__(self, name, colour, command, env, ready):
        self.name, self.colour, self.command, self.env, self.ready = name, colour, command, env, ready
        self.prefix = f"\033[{colour}m{name:<8}|\033[0m ".encode()
        self.proc, self.started, self.restart_at, self.backoff = None, 0.0, None, 0

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    def __init__(self, services, backoff, stop_order):
        self.services, self.stop_order = services, stop_order
        self.first, self.max, self.reset_after = backoff["first"], backoff["max"], backoff["reset_after"]
        self.looping = self.stopping = self.signalled = False
        self.sel = selectors.DefaultSelector()
        self.wake, wake_w = os.pipe()
        os.set_blocking(self.wake, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.sel.register(self.wake, selectors.EVENT_READ)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a Python handler, so that SIGCHLD writes to the wake-up pipe
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, sig, frame):
        if self.stopping:  # a second Ctrl-C does not interrupt the stop
            return
        self.signalled = True
        if not self.looping:
            raise Interrupted()

    def run(self, on_ready, ready_timeout):
        """Starts the services; calls on_ready once each has answered its readiness URL (or has exited, or not
        answered within ready_timeout: then it is named); supervises them until a signal comes."""
        self.looping = True
        for svc in self.services:
            svc.backoff = self.first
            self._spawn(svc)
        waiting, deadline, next_probe = [s for s in self.services if s.ready], None, 0.0
        while not self.signalled:
            now = time.monotonic()
            if waiting and now >= next_probe:
                svc = waiting[0]
                deadline = deadline or now + ready_timeout
                ok = http_ok(svc.ready, 2)
                if ok or not svc.running() or time.monotonic() > deadline:
                    if not ok:
                        say(f"{svc.name} is not ready yet; see its log lines above")
                    waiting.pop(0)
                    deadline = None
                    if not waiting:
                        on_ready()
                    continue
                next_probe = time.monotonic() + 0.2
            due = [s.restart_at for s in self.services if s.restart_at is not None] + ([next_probe] if waiting else [])
            self._pump(max(0.0, min(due) - time.monotonic()) if due else None)
            self._check()

    def _spawn(self, svc):
        svc.started, svc.restart_at = time.monotonic(), None
        try:
            # A process group of its own: a Ctrl-C on the terminal reaches only the supervisor, which then stops the
            # services in order.
            svc.proc = subprocess.Popen(svc.command, env=svc.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, process_group=0)
        except OSError as e:
            svc.proc = None
            self._emit(svc, [f"cannot run {svc.command[0]}: {e.strerror}".encode()])
            self._exited(svc, 127)
            return
        self.sel.register(svc.proc.stdout, selectors.EVENT_READ, (svc, bytearray()))

    def _exited(self, svc, status):
        now = time.monotonic()
        if now - svc.started >= self.reset_after:
            svc.backoff = self.first
        say(f"{svc.name} exited (status {status}); restarting in {svc.backoff} s")
        svc.restart_at = now + svc.backoff
        svc.backoff = min(svc.backoff * 2, self.max)

    def _check(self):
        """Every service that exited is reported and restarted after its backoff."""
        now = time.monotonic()
        for svc in self.services:
            if svc.restart_at is not None:
                if now >= svc.restart_at:
                    self._spawn(svc)
            elif svc.proc is not None and svc.proc.poll() is not None:
                code = svc.proc.returncode
                self._exited(svc, 128 - code if code < 0 else code)  # killed by a signal: 128+N, as a shell says

    def _pump(self, timeout):
        """Waits up to timeout (None: until something happens) and copies what the services wrote, line by line."""
        for key, _ in self.sel.select(timeout):
            if key.fileobj == self.wake:
                try:
                    os.read(self.wake, 4096)
                except BlockingIOError:
                    pass
                continue
            svc, pending = key.data
            data = os.read(key.fileobj.fileno(), 65536)
            if not data:  # EOF: the service (and whatever it started) closed its output
                self.sel.unregister(key.fileobj)
                key.fileobj.close()
                data = b"\n" if pending else b""
            pending += data
            *lines, rest = pending.split(b"\n")
            if len(rest) > 65536:  # a very long line without an end goes out in pieces
                lines, rest = lines + [rest], b""
            pending[:] = rest
            self._emit(svc, lines)

    def _emit(self, svc, lines):
        if lines:
            sys.stdout.buffer.write(b"".join(svc.prefix + line + b"\n" for line in lines))
            sys.stdout.buffer.flush()

    def stop(self):
        """TERMs the services one at a time, in stop_order, each waited for; then copies their last output."""
        self.stopping = True
        by_name = {s.name: s for s in self.services}
        for svc in (by_name[n] for n in self.stop_order if n in by_name):
            svc.restart_at = None
            if svc.running():
                svc.proc.terminate()
                while svc.running():
                    self._pump(1)  # SIGCHLD wakes it up
        until = time.monotonic() + 2  # a grandchild might keep a pipe open: not for long
        while len(self.sel.get_map()) > 1 and time.monotonic() < until:
            self._pump(until - time.monotonic())
