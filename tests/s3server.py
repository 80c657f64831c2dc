"""moto's S3 server on loopback for the team tests, with a gate that stalls uploads.

This is moto's own server mode (the WSGI app behind ``moto_server`` and
``moto.server.ThreadedMotoServer``) on a free port in a background thread, so `dvc`
subprocesses speak the real S3 protocol to it over HTTP. The gate lets a test interrupt
a push deterministically: after ``n`` object uploads the server holds every further upload
until released, the test kills the pusher, then the held uploads are refused.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

ACCESS_KEY_ID = "team-test-key"
SECRET_ACCESS_KEY = "team-test-secret"
REGION = "us-east-1"


class UploadGate:
    """WSGI middleware counting object uploads (PUT /bucket/key); holds those past ``limit``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.limit: int | None = None
        self.uploads = 0
        self.held = 0
        self.reached = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()

    def stall_after(self, limit: int) -> None:
        """Let ``limit`` more uploads through, then hold the rest until :meth:`release`."""
        with self._lock:
            self.limit = self.uploads + limit
            self.reached.clear()
            self.released.clear()

    def release(self) -> None:
        """Refuse every held upload (503) and let later ones through."""
        with self._lock:
            self.limit = None
        self.released.set()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        is_upload = environ["REQUEST_METHOD"] == "PUT" and environ.get("PATH_INFO", "/").strip(
            "/"
        ).count("/")
        if is_upload:
            with self._lock:
                hold = self.limit is not None and self.uploads >= self.limit
                if hold:
                    self.held += 1
                    self.reached.set()
                else:
                    self.uploads += 1
            if hold:
                self.released.wait(timeout=120)
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"held by the test gate"]
        return self.app(environ, start_response)


class S3Server:
    """moto's S3 protocol server on 127.0.0.1, a free port, in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.gate = UploadGate(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            host, 0, self.gate, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> S3Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.gate.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def client(self) -> Any:
        """A boto3 S3 client for this server (test credentials)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` under ``prefix``."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]
