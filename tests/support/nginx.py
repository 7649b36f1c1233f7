"""Run Debian's nginx with the shipped deploy/nginx-conference.conf in front of local workers."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import PROJECT_ROOT, free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def render_site_config(worker_ports: list[int], listen_port: int) -> str:
    """The deployment config with test ports; everything else exactly as shipped."""
    config = (PROJECT_ROOT / "deploy" / "nginx-conference.conf").read_text()
    config = config.replace("listen 80;", f"listen 127.0.0.1:{listen_port};")
    servers = [line for line in config.splitlines() if line.strip().startswith("server 127.0.0.1:")]
    assert len(servers) == 2, "the shipped config lists two workers"
    template = servers[0]
    lines = [template.replace("127.0.0.1:5000", f"127.0.0.1:{port}") for port in worker_ports]
    config = config.replace(servers[0] + "\n" + servers[1], "\n".join(lines))
    return config


@contextmanager
def running_nginx(workdir: Path, worker_ports: list[int], port: int | None = None) -> Iterator[str]:
    """Start nginx (foreground, own prefix and temp dirs) on `port` (default: a free one); yield its base URL."""
    assert NGINX is not None
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "tmp"):
        (workdir / sub).mkdir(exist_ok=True)
    port = port or free_port()
    site = render_site_config(worker_ports, port)
    main = f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
{site}
}}
"""
    conf = workdir / "nginx.conf"
    conf.write_text(main)
    check = subprocess.run([NGINX, "-t", "-p", str(workdir), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    with (workdir / "logs" / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(conf), "-g", "daemon off; user root;"],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
