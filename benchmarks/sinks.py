"""The callback sink: a local nginx when installed, else the asyncio sink.

nginx (Debian's ``nginx-light``) answers 200 to every method with one worker
process, so it costs the machine little and the figures measure the caller.
Without it, ``benchmarks.sink`` (aiohttp) stands in, which is slower; the
output says which one ran.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from loopitis.local.ports import (
    LOOPBACK,
    accepts_connections,
    end_process_group,
    free_port,
)

NGINX_CONFIG = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen {host}:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


@dataclass
class Sink:
    kind: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        end_process_group(self.process, signal.SIGTERM, 10.0)


def start_sink(workdir: Path, *, prefer_nginx: bool = True) -> Sink:
    """Start nginx if present (and wanted), else the asyncio sink."""
    port = free_port()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if prefer_nginx and Path(nginx).exists():
        process = _start_nginx(nginx, workdir / "nginx", port)
        kind = "nginx (1 worker)"
    else:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sink", str(port)],
            start_new_session=True,
        )
        kind = "asyncio (aiohttp, 1 process)"
    _wait_for(port, process)
    return Sink(kind, f"http://{LOOPBACK}:{port}/callback", process)


def _start_nginx(binary: str, root: Path, port: int) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(root=root, host=LOOPBACK, port=port))
    return subprocess.Popen(
        [binary, "-p", str(root), "-e", str(root / "error.log"), "-c", str(config)],
        start_new_session=True,
    )


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sink exited at start with {process.returncode}")
        if accepts_connections(port, LOOPBACK):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the sink did not listen on port {port} within 10 s")
