"""Receivers for Pacer's deliveries, for tests/deliveries.rs: a real SMTP server
(aiosmtpd) and an HTTP receiver standing in for Slack, Teams and a company's webhook.

Every email is parsed with Python's MIME library (`email`, default policy) and kept
as JSON: Message-ID, subject, sender, recipients, the text and HTML parts. Every HTTP
request is kept with its headers, its JSON body, the status it was answered and, for
paths under /hook/, whether its Standard Webhooks signature verifies with the official
`standardwebhooks` library and the secret the test registered for that path.

Control (JSON over HTTP on the same port):
  POST /control/answers  {"path": "/hook/flaky", "answers": [503, 503, 503]}
      the next requests to that path are answered these statuses in turn (429 and
      503 with Retry-After: 1), then 200; a path prefix ending in * applies to every
      path under it; "default": 503 answers every request with no answer left.
  POST /control/secret   {"path": "/hook/a", "secret": "whsec_..."}
  POST /control/bounce   {"address": "gone@example.com"}   RCPT TO answered 550
  GET  /received          {"http": [...], "mail": [...]}

    python3 tests/deliver/receivers.py        # prints "ready SMTP_PORT HTTP_PORT"
"""

import asyncio
import email
import email.policy
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook

LOCK = threading.Lock()
HTTP = []
MAIL = []
ANSWERS = {}  # path or prefix* -> {"answers": [...], "default": int | None}
SECRETS = {}
BOUNCE = set()


class Mailbox:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in BOUNCE:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        with LOCK:
            MAIL.append(
                {
                    "message_id": msg["Message-ID"],
                    "subject": msg["Subject"],
                    "from": msg["From"],
                    "to": msg["To"],
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "content_type": msg.get_content_type(),
                    "text": text.get_content() if text is not None else None,
                    "html": html.get_content() if html is not None else None,
                }
            )
        return "250 Message accepted"


def answer_for(path):
    with LOCK:
        for key in (path, *[k for k in ANSWERS if k.endswith("*") and path.startswith(k[:-1])]):
            rule = ANSWERS.get(key)
            if rule is None:
                continue
            if rule["answers"]:
                return rule["answers"].pop(0)
            if rule.get("default") is not None:
                return rule["default"]
    return 200


class Receiver(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/received":
            with LOCK:
                body = json.dumps({"http": HTTP, "mail": MAIL}).encode()
            return self.reply(200, body, [("Content-Type", "application/json")])
        self.reply(404)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.startswith("/control/"):
            cmd = json.loads(raw)
            with LOCK:
                if self.path == "/control/answers":
                    ANSWERS[cmd["path"]] = {"answers": list(cmd.get("answers", [])), "default": cmd.get("default")}
                elif self.path == "/control/secret":
                    SECRETS[cmd["path"]] = cmd["secret"]
                elif self.path == "/control/bounce":
                    BOUNCE.add(cmd["address"])
            return self.reply(204)
        status = answer_for(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = None
        secret = SECRETS.get(self.path)
        if secret is not None:
            try:
                Webhook(secret).verify(raw, headers)
                verified = True
            except Exception as e:  # the library's own verification error
                verified = f"{type(e).__name__}: {e}"
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        with LOCK:
            HTTP.append(
                {
                    "path": self.path,
                    "at": time.monotonic(),
                    "status": status,
                    "webhook_id": headers.get("webhook-id"),
                    "webhook_timestamp": headers.get("webhook-timestamp"),
                    "content_type": headers.get("content-type"),
                    "verified": verified,
                    "body": body,
                }
            )
        extra = [("Retry-After", "1")] if status in (429, 503) else []
        self.reply(status, b"ok" if status == 200 else b"not now", extra)


def main():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    smtp_port = probe.getsockname()[1]
    probe.close()
    controller = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print(f"ready {smtp_port} {http.server_address[1]}", flush=True)
    try:
        http.serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
