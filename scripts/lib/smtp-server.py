#!/usr/bin/python3 -I
"""smtp-server.py -- the test harness's SMTP server (aiosmtpd).

    smtp-server.py --host 127.0.0.1 --port N --maildir DIR
                   [--auth-user U (--auth-password P | --auth-password-file F)]

Started by the harness (scripts/lib/mp3c_local/servers.py, as scripts/services.toml
describes it); tests see it through the MP3C_TEST_SMTP_* variables that
scripts/with-servers exports.

Stored mail
    Every accepted message becomes two files in DIR:
      DIR/<seq>-<unix ms>.eml   the DATA bytes exactly as received (CRLF line
                                ends kept, dot-stuffing removed, without the
                                final ".")
      DIR/<seq>-<unix ms>.json  {"mail_from": ..., "rcpt_tos": [...],
                                 "received_at_ms": ..., "authenticated_as":
                                 user or null}
    <seq> is a 6-digit, zero-padded sequence number (1, 2, ...; continued
    after a restart on the same DIR), so sorting by name sorts by arrival.
    Both files are written under DIR/tmp and renamed into place, the .json
    first: a reader that sees a .eml can read its .json.  Readers should key
    on *.eml and ignore everything else (DIR/tmp in particular).

Recipient policy (RCPT TO), for testing a client's error handling
    local part starting with "reject-"  ->  550 5.1.1 mailbox unavailable
    local part starting with "busy-"    ->  451 4.3.0 try again later
    anything else, any domain           ->  accepted
    (case-insensitive).  A message goes to the accepted recipients only.

Authentication
    With --auth-user, AUTH PLAIN or LOGIN (no TLS) is required before MAIL
    FROM (530 otherwise); bad credentials get 535.  Without it, AUTH is not
    offered and mail is accepted from anyone.

Prints "smtp-server: listening on HOST:PORT" on stderr once it accepts
connections; exits 0 on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import hmac
import json
import logging
import os
import re
import signal
import sys
import time
import warnings

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
SERVER_NAME = "mp3c-test-smtp"

_NAME_RE = re.compile(r"^(\d+)-\d+\.(?:eml|json)$")


def say(msg):
    print(f"smtp-server: {msg}", file=sys.stderr, flush=True)


class Mailbox:
    """Stores messages as DIR/<seq>-<ms>.eml plus a .json sidecar."""

    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.tmp = os.path.join(self.dir, "tmp")
        os.makedirs(self.tmp, exist_ok=True)
        # Leftovers of a server killed while storing a message.
        for name in os.listdir(self.tmp):
            try:
                os.unlink(os.path.join(self.tmp, name))
            except OSError:
                pass
        self.seq = 0
        for name in os.listdir(self.dir):
            m = _NAME_RE.match(name)
            if m:
                self.seq = max(self.seq, int(m.group(1)))

    @staticmethod
    def _write(path, data):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def store(self, content, mail_from, rcpt_tos, authenticated_as):
        """Store one message; returns its base name (without extension)."""
        now_ms = time.time_ns() // 1_000_000
        self.seq += 1
        base = f"{self.seq:06d}-{now_ms}"
        meta = {
            "mail_from": mail_from,
            "rcpt_tos": list(rcpt_tos),
            "received_at_ms": now_ms,
            "authenticated_as": authenticated_as,
        }
        try:
            meta_bytes = json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes in an address
            meta_bytes = json.dumps(meta, ensure_ascii=True, indent=1).encode("ascii")
        meta_bytes += b"\n"
        tmp_json = os.path.join(self.tmp, base + ".json")
        tmp_eml = os.path.join(self.tmp, base + ".eml")
        try:
            self._write(tmp_json, meta_bytes)
            self._write(tmp_eml, content)
            # .json first: whoever sees the .eml finds its .json.
            os.rename(tmp_json, os.path.join(self.dir, base + ".json"))
            os.rename(tmp_eml, os.path.join(self.dir, base + ".eml"))
        except OSError:
            for p in (tmp_json, tmp_eml):
                try:
                    os.unlink(p)
                except OSError:
                    pass
            raise
        return base


def recipient_status(address):
    """SMTP reply for RCPT TO:<address>, None to accept it."""
    local = address.rpartition("@")[0] if "@" in address else address
    local = local.strip('"').lower()
    if local.startswith("reject-"):
        return "550 5.1.1 mailbox unavailable"
    if local.startswith("busy-"):
        return "451 4.3.0 try again later"
    return None


class Handler:
    def __init__(self, mailbox):
        self.mailbox = mailbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        status = recipient_status(address)
        if status is not None:
            return status
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content
        if content is None:
            content = envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        user = None
        if session.authenticated:
            login = getattr(session.auth_data, "login", None)
            if isinstance(login, bytes):
                user = login.decode("utf-8", "replace")
            elif login is not None:
                user = str(login)
        try:
            base = self.mailbox.store(bytes(content), envelope.mail_from, envelope.rcpt_tos, user)
        except OSError as e:
            say(f"error: could not store a message: {e}")
            return "451 4.3.0 could not store the message"
        say(f"stored {base}.eml ({len(content)} bytes) from <{envelope.mail_from}> "
            f"to {', '.join('<' + r + '>' for r in envelope.rcpt_tos)}")
        return f"250 2.0.0 OK stored as {base}"


def make_authenticator(user, password):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    want_user = user.encode("utf-8")
    want_password = password.encode("utf-8")

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # compare both, always (no early exit)
        user_ok = hmac.compare_digest(bytes(auth_data.login or b""), want_user)
        password_ok = hmac.compare_digest(bytes(auth_data.password or b""), want_password)
        if user_ok and password_ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)  # -> 535 5.7.8

    return authenticator


def parse_args(argv):
    p = argparse.ArgumentParser(prog="smtp-server.py", description="SMTP server for the test harness")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--auth-password-file", help="read the password from the first line of this file")
    p.add_argument("--tls-cert", help="PEM certificate: offer STARTTLS (and require it), or with --implicit-tls")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (SMTPS, as on port 465)")
    args = p.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if args.implicit_tls and args.tls_cert is None:
        p.error("--implicit-tls needs --tls-cert and --tls-key")
    if args.auth_password_file is not None:
        if args.auth_password is not None:
            p.error("--auth-password and --auth-password-file are mutually exclusive")
        try:
            with open(args.auth_password_file, encoding="utf-8") as f:
                args.auth_password = f.readline().rstrip("\r\n")
        except OSError as e:
            p.error(f"cannot read --auth-password-file: {e}")
    if (args.auth_user is None) != (args.auth_password is None):
        p.error("--auth-user and --auth-password go together")
    if args.auth_user is not None and not args.auth_user:
        p.error("--auth-user must not be empty")
    if not 0 < args.port < 65536:
        p.error("bad --port")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        from aiosmtpd.controller import UnthreadedController
    except ImportError as e:
        say(f"error: cannot import aiosmtpd ({e}); install python3-aiosmtpd (scripts/install-deps)")
        return 1

    # aiosmtpd warns (once per connection) about AUTH without TLS and about
    # its deprecated Session.login_data; neither matters on 127.0.0.1.
    warnings.filterwarnings("ignore", message=".*AUTH.*TLS.*")
    logging.basicConfig(stream=sys.stderr, format="smtp-server: %(name)s: %(levelname)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    try:
        mailbox = Mailbox(args.maildir)
    except OSError as e:
        say(f"error: maildir {args.maildir}: {e}")
        return 1

    smtp_kwargs = {
        "data_size_limit": MAX_MESSAGE_BYTES,
        "enable_SMTPUTF8": True,
        "decode_data": False,
    }
    if args.auth_user is not None:
        smtp_kwargs.update(
            auth_required=True,
            auth_require_tls=False,
            authenticator=make_authenticator(args.auth_user, args.auth_password),
        )
    controller_kwargs = {}
    tls = "no TLS"
    if args.tls_cert is not None:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.implicit_tls:
            controller_kwargs["ssl_context"] = context
            tls = "implicit TLS"
        else:
            smtp_kwargs.update(tls_context=context, require_starttls=True)
            tls = "STARTTLS required"

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)

    controller = UnthreadedController(
        Handler(mailbox),
        hostname=args.host,
        port=args.port,
        loop=loop,
        server_hostname=SERVER_NAME,  # also spares a getfqdn() per connection
        **controller_kwargs,
        **smtp_kwargs,
    )
    try:
        controller.begin()
    except OSError as e:
        say(f"error: cannot listen on {args.host}:{args.port}: {e}")
        return 1
    auth = f"AUTH required (user {args.auth_user})" if args.auth_user is not None else "no AUTH"
    say(f"maildir {mailbox.dir}, {auth}, {tls}, max message {MAX_MESSAGE_BYTES} bytes")
    say(f"listening on {args.host}:{args.port}")

    loop.run_forever()  # until SIGTERM/SIGINT

    # Stop listening, end the open sessions, exit 0.  A message being stored
    # is never cut short: storing is synchronous, between two loop callbacks.
    controller.server.close()
    tasks = asyncio.all_tasks(loop)
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=5))
    try:
        loop.run_until_complete(asyncio.wait_for(controller.server.wait_closed(), 5))
    except (asyncio.TimeoutError, OSError):
        pass
    loop.close()
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
