"""A fault-injecting HTTP proxy on 127.0.0.1 in front of an S3 API (moto's server): each request is forwarded
unchanged, unless a rule answers it with an error first. Started and stopped through its handle."""

from __future__ import annotations

import http.client
import random
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# what S3 answers when it is overloaded: clients retry it
SLOW_DOWN = (503, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                  b"<Message>Please reduce your request rate.</Message></Error>")

Rule = Callable[[str, str], bool]  # (method, path) -> answer this request with an error


class FaultyS3Proxy:
    """Forwards to the S3 API at `target` ('127.0.0.1:port'); `fail_when(method, path)` rules answer a request
    with 503 SlowDown instead; `transient(rate, seed)` fails that share of requests at random. `faults` counts
    the requests answered with an error, by rule name."""

    def __init__(self, target: str):
        self.target, self.rules, self.faults = target, {}, Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # one line per request otherwise
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()

            def _forward(self):
                body = self._body()
                fault = proxy.fault_for(self.command, self.path)
                if fault:
                    status, text = SLOW_DOWN
                    if "Range" in self.headers:  # the client reads an error body into the range's buffer
                        text = b""
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                host, port = proxy.target.rsplit(":", 1)
                upstream = http.client.HTTPConnection(host, int(port), timeout=60)
                try:
                    headers = {name: value for name, value in self.headers.items()
                               if name.lower() not in ("transfer-encoding", "expect", "content-length")}
                    if body or self.command in ("PUT", "POST"):
                        headers["Content-Length"] = str(len(body))
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.send_response(answer.status, answer.reason)
                    for name, value in answer.getheaders():
                        if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                            self.send_header(name, value)
                    # a HEAD answer's length is the object's, not that of its (empty) body
                    length = answer.getheader("Content-Length") if self.command == "HEAD" else None
                    self.send_header("Content-Length", length or str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a killed client's connection: nothing to say
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fail_when(self, name: str, rule: Rule) -> None:
        """Answer every request for which `rule(method, path)` holds with an error (counted under `name`)."""
        self.rules[name] = rule

    def transient(self, rate: float, seed: int) -> None:
        """Answer a `rate` share of all requests with an error, drawn from a generator seeded with `seed`."""
        draw = random.Random(seed)
        self.rules["transient"] = lambda method, path: draw.random() < rate

    def clear(self) -> None:
        self.rules = {}

    def fault_for(self, method: str, path: str) -> str | None:
        """Return the name of the rule that fails this request (counted), or None."""
        with self._lock:
            for name, rule in list(self.rules.items()):
                if rule(method, path):
                    self.faults[name] += 1
                    return name
        return None

    def __enter__(self) -> FaultyS3Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
