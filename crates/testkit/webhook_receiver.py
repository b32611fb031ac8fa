#!/usr/bin/env python3
"""A webhook receiver with an independent verifier, for the outgoing-webhook tests (driven by
crates/testkit/src/receiver.rs).

    python3 webhook_receiver.py --host 127.0.0.1 --port N --out received.jsonl --control control.json

Every POST is verified with the official Standard Webhooks library for Python (`standardwebhooks`
from PyPI, pinned in scripts/test), never with this project's code: each secret listed in the
control file is tried on its own, and the record says which verified. The control file (JSON,
re-read on every request, written atomically by the test) holds {"secrets": [...], "mode": ...}:

- "ok": 204 when a secret verifies the delivery, 401 when none does;
- "fail": 500 to everything;
- "slow": sleeps "slow_seconds" and then answers as "ok" (the sender gives up first).

Each request is appended to --out as one JSON line, flushed to the OS before the answer is sent (so
a killed receiver loses nothing; not fsynced: the tests kill processes, never the machine, and an
fsync per request is disk work on the disk PostgreSQL shares in the chaos runs):
{"webhook_id", "webhook_timestamp", "signatures", "verified_with", "error", "status", "mode",
"body", "received_at"}. Prints "ready" once listening; exits 98 when the port is taken, 3 when the
library is missing.
"""

import argparse
import errno
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as error:
    print(
        f"webhook_receiver.py: cannot import standardwebhooks ({error}); run scripts/test, which installs it",
        file=sys.stderr,
    )
    sys.exit(3)

ADDRESS_IN_USE = 98
WRITE_LOCK = threading.Lock()


def control(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {"secrets": [], "mode": "ok"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        settings = control(self.server.control)
        mode = settings.get("mode", "ok")
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified_with = []
        error = None
        for index, secret in enumerate(settings.get("secrets", [])):
            try:
                Webhook(secret).verify(body, headers)
                verified_with.append(index)
            except WebhookVerificationError as failure:
                error = str(failure)
            except Exception as failure:  # a malformed header is a failed verification too
                error = f"{type(failure).__name__}: {failure}"
        if mode == "fail":
            status = 500
        else:
            status = 204 if verified_with else 401
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        record = {
            "webhook_id": headers.get("webhook-id"),
            "webhook_timestamp": headers.get("webhook-timestamp"),
            "signatures": len((headers.get("webhook-signature") or "").split()),
            "verified_with": verified_with,
            "error": None if verified_with else error,
            "status": status,
            "mode": mode,
            "body": parsed,
            "received_at": time.time(),
        }
        with WRITE_LOCK:
            with open(self.server.out, "a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
                out.flush()
        if mode == "slow":
            time.sleep(float(settings.get("slow_seconds", 15)))
        self.send_response(status)
        answer = b"" if status == 204 else json.dumps({"status": status}).encode()
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        if answer:
            self.wfile.write(answer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--control", required=True)
    args = parser.parse_args()
    try:
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except OSError as error:
        print(f"webhook_receiver.py: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return ADDRESS_IN_USE if error.errno == errno.EADDRINUSE else 1
    server.daemon_threads = True
    server.out = args.out
    server.control = args.control
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
