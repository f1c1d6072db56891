"""Private, throw-away servers for `keepwarm run` and the tests: Redis, a mailbox (Dovecot, else pymap), a mail catcher.

Each one lives in its own folder, listens on a free loopback port and stops with nothing left running.
"""

from service.run.devstack.servers import (
    DovecotServer,
    PymapServer,
    RedisServer,
    demo_mailbox,
    ending_with_this_process,
    free_port,
    wait_for_port,
)
from service.run.devstack.smtp import MailCatcher

__all__ = ["DovecotServer", "MailCatcher", "PymapServer", "RedisServer", "demo_mailbox", "ending_with_this_process",
           "free_port", "wait_for_port"]
