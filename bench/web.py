"""Web latency under load: p50/p99 of the rep's debrief form and the admin's template preview, 50 concurrent
clients against gunicorn (4 workers × 4 threads) on loopback. Prints figures; asserts nothing.

Usage: .venv/bin/python bench/web.py [CLIENTS] [REQUESTS_PER_CLIENT]
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import urllib3
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).parents[1]))

from service.context import Services
from service.db import make_engine, session_scope, upgrade  # noqa: E402
from service.models import Outcome, Rep  # noqa: E402
from service.outbox.template_context import debrief_url  # noqa: E402
from service.pipeline.process import ingest_files  # noqa: E402
from service.run.devstack import RedisServer, free_port, wait_for_port  # noqa: E402
from service.settings import load_settings  # noqa: E402
from service.team.admins import create_admin  # noqa: E402
from service.team.reps import save_rep  # noqa: E402
from service.tokens import Signer  # noqa: E402
from tests.mail import recap  # noqa: E402

PASSWORD = "bench-password-0123456789"
TEMPLATE = "/admin/templates/thank_you/lost/en"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def seed(folder: Path, settings) -> str:
    """A rep, a lost meeting and an admin; returns the debrief link's path."""
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    save_rep(engine, "tom.baker@acme.example", name="Tom Baker", timezone="Europe/London")
    create_admin(engine, "admin@acme.example", PASSWORD)
    eml = folder / "recap.eml"
    eml.write_bytes(recap(1, body="Hi Jane,\n\nno budget until April, and your CFO must sign off.\n\nTom"))
    ingest_files(Services.with_engine(settings, engine), [eml])
    with session_scope(engine) as session:
        outcome = session.exec(select(Outcome)).first()
        rep = session.get(Rep, outcome.rep_id)
        url = debrief_url(Signer(settings), outcome, rep)
    return url.removeprefix(settings.base_url)


def client(base: str, debrief: str, rounds: int, timings: dict[str, list[float]], ready: threading.Barrier) -> None:
    http = urllib3.PoolManager(maxsize=1, retries=False, timeout=30)
    jar = _login(http, base)
    response = http.request("GET", base + TEMPLATE, headers={"Cookie": _header(jar)})
    cookies = _header(_cookies(response, jar))
    token = CSRF.search(response.data.decode()).group(1)
    body = {"csrf_token": token, "subject": "Thank you, {{ customer.first_name or 'there' }}",
            "text": "Dear {{ customer.name or 'customer' }},\nthank you for {{ meeting.date_text }}.\n",
            "html": "<p>Dear {{ customer.name or 'customer' }}</p>", "sample": ""}
    ready.wait()  # every client logged in (a password hash costs ~0.1 s of CPU) before any request is timed
    for _ in range(rounds):
        _timed(timings["debrief form (GET)"], lambda: http.request("GET", base + debrief))
        _timed(timings["template preview (POST)"], lambda: http.request(
            "POST", base + TEMPLATE + "/preview", fields=body, encode_multipart=False, headers={"Cookie": cookies}))


def _login(http, base: str) -> dict[str, str]:
    page = http.request("GET", base + "/admin/login")
    jar = _cookies(page, {})
    token = CSRF.search(page.data.decode()).group(1)
    done = http.request("POST", base + "/admin/login", fields={"csrf_token": token, "email": "admin@acme.example",
                                                              "password": PASSWORD},
                        encode_multipart=False, headers={"Cookie": _header(jar)}, redirect=False)
    if done.status != 302:
        raise RuntimeError(f"login failed: HTTP {done.status}")
    return _cookies(done, jar)


def _cookies(response, jar: dict[str, str]) -> dict[str, str]:
    """A minimal cookie jar: the newest value of each cookie, expired ones dropped."""
    for line in response.headers.getlist("Set-Cookie"):
        name, _, value = line.split(";")[0].partition("=")
        if value and "Max-Age=0" not in line:
            jar[name.strip()] = value
        else:
            jar.pop(name.strip(), None)
    return jar


def _header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def _timed(samples: list[float], call) -> None:
    started = time.perf_counter()
    response = call()
    if response.status >= 400:
        raise RuntimeError(f"HTTP {response.status}")
    samples.append(time.perf_counter() - started)


def main(clients: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kw-web-"))
    port = free_port()
    with RedisServer(folder / "redis") as redis:
        env = {**os.environ, "KEEPWARM_DATABASE_URL": f"sqlite:///{folder}/web.db", "KEEPWARM_REDIS_URL": redis.url,
               "KEEPWARM_SECRET_KEY": "bench-secret-0123456789abcdef", "KEEPWARM_INSTANCE_DIR": str(folder),
               "KEEPWARM_BASE_URL": f"http://127.0.0.1:{port}", "KEEPWARM_INTAKE_ADDRESS": "followup@acme.example"}
        settings = load_settings(environ=env, env_file=None)
        debrief = seed(folder, settings)
        server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
                                   "--workers", "4", "--threads", "4", "service.wsgi:app"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(folder / "gunicorn.log", "w"))
        try:
            wait_for_port(port, timeout=60, process=server)
            run(f"http://127.0.0.1:{port}", debrief, clients, rounds)
        finally:
            server.terminate()
            server.wait(30)


def run(base: str, debrief: str, clients: int, rounds: int) -> None:
    timings: dict[str, list[float]] = {"debrief form (GET)": [], "template preview (POST)": []}
    ready = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=client, args=(base, debrief, rounds, timings, ready)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(f"{clients} concurrent clients, {rounds} rounds each, {elapsed:.1f}s, gunicorn 4 workers x 4 threads, SQLite")
    for name, samples in timings.items():
        ordered = sorted(samples)
        print(f"  {name:<26} n={len(ordered):>5}  p50 {1000 * statistics.median(ordered):7.1f} ms  "
              f"p99 {1000 * ordered[int(len(ordered) * 0.99) - 1]:7.1f} ms  {len(ordered) / elapsed:6.1f} req/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, int(sys.argv[2]) if len(sys.argv) > 2 else 20)
