"""The running process's settings, database engine and Redis, configured once and shared by web, jobs and CLI."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from functools import cached_property

from redis import Redis
from rq import Queue
from sqlalchemy.engine import Engine

from service.db import make_engine
from service.settings import Settings, ensure_secret_key, load_settings

# Queues named by purpose: reading mail must never wait behind a burst of sends, and vice versa. Webhook
# deliveries come last: a slow receiver must not hold an email back.
QUEUES = ("intake", "outbox", "maintenance", "webhooks")


@dataclass
class Services:
    settings: Settings
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def redis(self) -> Redis:
        if not self.settings.redis_url:
            raise RuntimeError("KEEPWARM_REDIS_URL is not set (`keepwarm run` starts a private Redis)")
        return Redis.from_url(self.settings.redis_url, health_check_interval=30, socket_timeout=30,
                              socket_connect_timeout=5)

    @classmethod
    def with_engine(cls, settings: Settings, engine: Engine) -> Services:
        """Services around an engine someone else made (a test's, a benchmark's)."""
        services = cls(settings)
        services.__dict__["engine"] = engine
        return services

    def queue(self, name: str) -> Queue:
        return Queue(name, connection=self.redis, default_timeout=300)

    def worker_name(self) -> str:
        """This worker's name on the rows it claims (settings.worker_id, else host name and process id)."""
        return self.settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"


_current: Services | None = None


def configure(settings: Settings | None = None) -> Services:
    """Set this process's services (settings from the environment when none are given)."""
    global _current
    _current = Services(ensure_secret_key(settings or load_settings()))
    return _current


def configured() -> Services | None:
    """This process's services if they were configured, else None (never configures from the environment)."""
    return _current


def current() -> Services:
    """This process's services, configured from the environment on first use."""
    return _current or configure()
