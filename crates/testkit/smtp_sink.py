#!/usr/bin/env python3
"""A real SMTP server for the mail tests (driven by crates/testkit/src/smtp.rs).

    python3 smtp_sink.py --host 127.0.0.1 --port N --out /path/messages.jsonl

Plain SMTP (no TLS, no AUTH) with aiosmtpd, pinned in scripts/test. Each message the server accepts
is appended to --out as one JSON line {"mail_from", "rcpt_tos", "data", "received_at"}, flushed and
fsynced before the client hears "250 OK": a test never sees an acknowledged message missing. Prints
"ready" once listening and serves until SIGTERM, SIGINT or SIGKILL. Exits with status 98 when the
port is taken (the caller picks another, or retries), 3 when aiosmtpd is missing.
"""

import argparse
import asyncio
import errno
import json
import os
import signal
import sys
import time

try:
    from aiosmtpd.smtp import SMTP
except ImportError as error:
    print(
        f"smtp_sink.py: cannot import aiosmtpd ({error}); run scripts/test, which installs it",
        file=sys.stderr,
    )
    sys.exit(3)

ADDRESS_IN_USE = 98


class Sink:
    """aiosmtpd handler: records every message, accepts every envelope."""

    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", errors="replace"),
            "received_at": time.time(),
        }
        with open(self.out, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return "250 OK"


async def serve(args):
    loop = asyncio.get_running_loop()
    sink = Sink(args.out)

    def smtp():
        # No per-session command limit: a pooled client may send many messages on one connection.
        return SMTP(sink, hostname="localhost", enable_SMTPUTF8=True, command_call_limit=None)

    try:
        server = await loop.create_server(smtp, host=args.host, port=args.port)
    except OSError as error:
        print(f"smtp_sink.py: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return ADDRESS_IN_USE if error.errno == errno.EADDRINUSE else 1
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True, help="JSON-lines file the messages are appended to")
    sys.exit(asyncio.run(serve(parser.parse_args())))


if __name__ == "__main__":
    main()
