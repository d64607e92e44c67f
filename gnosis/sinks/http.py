"""A small HTTP server for ``/metrics`` and ``/health``, for processes without the worker's
web server (replay, backtest, benchmarks).

>>> server = serve_metrics(0, host="127.0.0.1")   # port 0: any free port
>>> server.port > 0
True
>>> server.close()

It runs in a daemon thread and serves :func:`gnosis.sinks.metrics.render`, the same text
a live worker serves, so one Prometheus configuration fits both.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gnosis.sinks.metrics import render

__all__ = ["MetricsServer", "serve_metrics"]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = render()
            self._send(200, body, content_type)
        elif path == "/health":
            self._send(200, b'{"status": "ok"}\n', "application/json")
        else:
            self._send(404, b"not found\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request stderr log: Prometheus scrapes every few seconds."""


class MetricsServer:
    """A running metrics server; :meth:`close` stops it (also usable as a context manager)."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The port the server listens on (the chosen one when started with port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:6066``."""
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(port: int, host: str = "0.0.0.0") -> MetricsServer:
    """Serve ``/metrics`` and ``/health`` on ``host:port`` from a daemon thread."""
    httpd = ThreadingHTTPServer((host, port), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name=f"metrics-http-{port}",
                              daemon=True)
    thread.start()
    return MetricsServer(httpd, thread)
