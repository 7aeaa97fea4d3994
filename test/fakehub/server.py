"""HTTP layer: threaded keep-alive server on 127.0.0.1, and the command line."""

import argparse
import email.utils
import gc
import http
import json
import select
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .hub import Hub
from .record import Recorder, from_env_or
from .request import Request
from .util import correlation_id, dumps

_REASONS = {477: "Migration In Progress"}


def _reason(status):
    """Reason phrase for a status code."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return _REASONS.get(status, "Unknown")


class Headers(dict):
    """Request headers with case-insensitive get() (keys stored lower-case)."""

    def get(self, name, default=None):
        """Header value by any-case name."""
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name):
        """Header value by any-case name (KeyError if absent)."""
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name):
        """Is the header present (any case)?"""
        return dict.__contains__(self, name.lower())


class Handler(BaseHTTPRequestHandler):
    """One keep-alive connection; every request goes to the Hub."""

    protocol_version = "HTTP/1.1"

    def parse_request(self):
        """Request line and headers, without the (slow) email parser."""
        self.command = None
        self.close_connection = True
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = line
        words = line.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.request_version = "HTTP/1.0"
            self.send_error(400, "Bad request line %r" % line)
            return False
        self.command, self.path, self.request_version = words
        headers = Headers()
        while True:
            raw = self.rfile.readline(65537)
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(headers) > 100 or len(raw) > 65536:
                self.send_error(431, "Request header fields too large")
                return False
            name, _, value = raw.decode("iso-8859-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        self.headers = headers
        conn = headers.get("connection", "").lower()
        self.close_connection = conn == "close" or (
            self.request_version == "HTTP/1.0" and conn != "keep-alive")
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def setup(self):
        """Disable Nagle: headers and body must not wait for a delayed ACK."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        """Silence the per-request log line."""

    def _read_body(self):
        """Request body from Content-Length or chunked transfer encoding."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _serve(self):
        """Parse, dispatch, and write (or withhold) the answer."""
        hub = self.server.hub
        req = Request(self.command, self.path, self._read_body(), self.headers)
        if req.path.startswith("/_fake/"):
            action, status, body, headers = hub.handle_control(req)
        else:
            sent_path = req.path
            action, status, body, headers = hub.handle_api(req)
            if action == "respond":
                hub.recorder.write(req, sent_path, status, body, headers)
        if isinstance(action, tuple) and action[0] == "hang":
            self._hang(action[1])
        elif action == "reset":
            self._reset()
        else:
            self._send(status, body, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _send(self, status, body, headers):
        """Write status line, headers and body in one send."""
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        else:
            payload = dumps(body)
        cid = body.get("correlationId") if isinstance(body, dict) else None
        lines = ["HTTP/1.1 %d %s" % (status, _reason(status)),
                 "Date: " + email.utils.formatdate(usegmt=True),
                 "Content-Length: %d" % len(payload),
                 "X-HubSpot-Correlation-Id: " + (cid or correlation_id())]
        if payload and "Content-Type" not in headers:
            lines.append("Content-Type: application/json;charset=utf-8")
        for k, v in headers.items():
            lines.append("%s: %s" % (k, v))
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + payload)
        except OSError:
            self.close_connection = True

    def _hang(self, ms):
        """Hold the request unanswered until the client gives up or ms pass."""
        deadline = time.monotonic() + ms / 1000.0
        sock = self.connection
        while time.monotonic() < deadline and not self.server.hub.stopping:
            ready, _, _ = select.select([sock], [], [], 0.1)
            if ready:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
                time.sleep(0.1)
        self.close_connection = True

    def _reset(self):
        """Abort the connection with a TCP RST (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass


class Server(ThreadingHTTPServer):
    """Thread per connection; threads never block shutdown."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        """Connection-level errors (client went away) are not worth a traceback."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handle_error(request, client_address)


def parse_args(argv):
    """Command-line options -> start-up config overrides and port."""
    ap = argparse.ArgumentParser(description="Fake HubSpot API server (loopback only)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any)")
    ap.add_argument("--token", help="private-app bearer token (default test-token)")
    ap.add_argument("--app-id", type=int, help="app id (default 54321)")
    ap.add_argument("--portal-id", type=int, help="portal/hub id (default 62515)")
    ap.add_argument("--client-secret", help="app client secret (default hubsync-test-secret)")
    ap.add_argument("--config", help="JSON object of config keys, or @file")
    ap.add_argument("--record", help="append every API request and answer to this file "
                    "(JSON lines; default: $HUBSYNC_FAKE_RECORD, else none; a %%p in it "
                    "becomes the process id)")
    args = ap.parse_args(argv)
    overrides = {}
    if args.config:
        text = args.config
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        overrides.update(json.loads(text))
    for key, attr in (("token", "token"), ("appId", "app_id"), ("portalId", "portal_id"),
                      ("clientSecret", "client_secret")):
        if getattr(args, attr) is not None:
            overrides[key] = getattr(args, attr)
    return args.port, overrides, args.record


def main(argv=None):
    """Serve until SIGTERM/SIGINT; the first stdout line is the port number."""
    port, overrides, record = parse_args(sys.argv[1:] if argv is None else argv)
    # Records hold no reference cycles: young collections are enough; full ones
    # (which walk every record) would stall requests on a big store.
    gc.set_threshold(100000, 50, 100000)
    try:
        hub = Hub(overrides)
    except Exception as e:  # bad --config
        print("fake_hubspot: %s" % e, file=sys.stderr)
        return 2
    server = Server(("127.0.0.1", port), Handler)
    hub.recorder = Recorder(from_env_or(record))
    server.hub = hub
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    while not stop.wait(0.5):
        pass
    hub.stopping = True
    server.shutdown()
    server.server_close()
    return 0
