"""Email templates: defaults from `templates/email/`, versions in the database, rendered in Jinja's sandbox.

A template file holds three sections behind marker lines (Jinja comments, so a file also renders as a whole):
`{# --- subject --- #}`, `{# --- text --- #}`, `{# --- html --- #}`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from string import Formatter

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.filters import do_format
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment, SecurityError
from sqlmodel import Session, select

from service.languages import LANGUAGES
from service.models import EmailTemplate

logger = logging.getLogger(__name__)

DEFAULTS = Path(__file__).parents[2] / "templates" / "email"
_MARKER = re.compile(r"^\{# --- (subject|text|html) --- #\}[ \t]*\n?", re.M)
# A rendered email bigger than this is a template bug (a loop gone wild), not an email.
MAX_RENDERED_CHARS = 200_000


@dataclass(frozen=True)
class TemplateSource:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    version: int | None


class RenderError(ValueError):
    """A template that does not render: syntax, an unknown name, a sandbox refusal, or a runaway size."""

    def __init__(self, message: str, *, part: str | None = None, line: int | None = None):
        super().__init__(message)
        self.part, self.line = part, line


class RenderLimitError(RenderError):
    """A render stopped by the time or memory bound (RENDER_SECONDS, _CHILD_MEMORY): the template, not the data."""


def split_sections(source: str) -> TemplateSource:
    parts = dict.fromkeys(("subject", "text", "html"), "")
    pieces = _MARKER.split(source)
    for name, body in zip(pieces[1::2], pieces[2::2], strict=True):
        parts[name] = body
    return TemplateSource(parts["subject"].strip(), parts["text"].strip("\n") + "\n", parts["html"].strip("\n"))


@lru_cache(maxsize=256)
def default_source(kind: str, variant: str, language: str) -> TemplateSource | None:
    """The shipped default for a key, falling back to the `default` variant, then to English."""
    for variant_name, lang in ((variant, language), ("default", language), (variant, "en"), ("default", "en")):
        path = DEFAULTS / kind / f"{variant_name}.{lang}.jinja"
        if path.exists():
            return split_sections(path.read_text(encoding="utf-8"))
    return None


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> SandboxedEnvironment:
    return _limited_environment(autoescape)


def render_source(source: TemplateSource, context: dict) -> tuple[str, str, str]:
    """Render the three parts; RenderError names the part and what is wrong."""
    subject = _render_part("subject", source.subject, context, autoescape=False)
    text = _render_part("text", source.text, context, autoescape=False)
    html = _render_part("html", source.html, context, autoescape=True) if source.html.strip() else ""
    return " ".join(subject.split()), text, html


@lru_cache(maxsize=512)
def _compiled(source: str, autoescape: bool):
    """Compiling costs more than rendering: each distinct source is compiled once per process."""
    return _environment(autoescape).from_string(source)


def _render_part(name: str, source: str, context: dict, *, autoescape: bool) -> str:
    try:
        output = _compiled(source, autoescape).render(context)
    except (TemplateError, ArithmeticError, TypeError, ValueError, OverflowError, MemoryError,
            RecursionError) as error:
        line = getattr(error, "lineno", None) or _template_line(error)
        where = f" line {line}" if line else ""
        failure = RenderLimitError if isinstance(error, MemoryError) else RenderError
        raise failure(f"{name}{where}: {_describe(error)}", part=name, line=line) from error
    if len(output) > MAX_RENDERED_CHARS:
        raise RenderError(f"{name}: rendered to {len(output)} characters (limit {MAX_RENDERED_CHARS})", part=name)
    return output


def _describe(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "MemoryError: the template needs too much memory"
    return f"{type(error).__name__}: {error}"


def _template_line(error: BaseException) -> int | None:
    """The template line a runtime error happened on (Jinja rewrites tracebacks to point at template lines)."""
    line, trace = None, error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def versions(session: Session, kind: str, variant: str, language: str) -> list[EmailTemplate]:
    """Active versions of a key, newest first."""
    query = select(EmailTemplate).where(EmailTemplate.kind == kind, EmailTemplate.variant == variant,
                                        EmailTemplate.language == language, EmailTemplate.active == True)  # noqa: E712
    return list(session.exec(query.order_by(EmailTemplate.version.desc())))


def render_email(session: Session, kind: str, variant: str, language: str, context: dict, *,
                 cache: dict | None = None, render=render_source) -> Rendered:
    """The newest version that renders; a broken one is skipped (and marked) so sending never blocks.

    `cache` (a dict the caller keeps for one batch) saves looking the versions up again for the same key.
    `render` renders one source (the sender passes a BoundedRenderer). A version stopped by the time or memory
    bound fails this email (RenderLimitError) and is marked broken: the next emails skip it, using the
    previous version or the shipped default, until an admin saves a new one.
    """
    language = language if language in LANGUAGES else "en"
    key = (kind, variant, language)
    found = cache.get(key) if cache is not None else None
    if found is None:
        found = versions(session, kind, variant, language)
        if cache is not None:
            cache[key] = found
    for version in found:
        if version.broken_at is not None:
            continue
        try:
            subject, text, html = render(TemplateSource(version.subject, version.text, version.html), context)
        except RenderLimitError as error:
            raise _mark_stopped(version, error, context) from error
        except RenderError as error:
            _mark_broken(version, error)
            continue
        return Rendered(subject, text, html, version.version)
    source = default_source(kind, variant, language)
    if source is None:
        raise RenderError(f"no template for {kind}/{variant}/{language}")
    subject, text, html = render(source, context)
    return Rendered(subject, text, html, None)


def _mark_broken(version: EmailTemplate, error: RenderError) -> None:
    """Tell the admin (the template list shows last_error) and fall back to the previous good version."""
    if version.last_error != str(error):
        version.last_error = str(error)[:2000]
        logger.error("template %s/%s/%s v%s does not render, using an older version: %s",
                     version.kind, version.variant, version.language, version.version, error)


def _mark_stopped(version: EmailTemplate, error: RenderLimitError, context: dict) -> RenderLimitError:
    """Broken for good (until a new version is saved): the error for the email it was stopped on."""
    name = f"template {version.kind}/{version.variant}/{version.language} v{version.version}"
    customer = (context.get("customer") or {}).get("email") or "a rep"
    version.broken_at = datetime.now(UTC)
    version.last_error = (f"stopped while rendering the email for {customer}: {error}. Emails use the previous "
                          f"version (or the shipped default) until a new version is saved.")[:2000]
    logger.error("%s marked broken: %s", name, error)
    return RenderLimitError(f"{name} stopped: {error}; the version is marked broken", part=error.part,
                            line=error.line)


# ---------------------------------------------------------------------------------------------------- limits
# Admins write these templates, so the sandbox also refuses the cheap ways to exhaust memory or time:
# huge repetitions, powers and format widths. Admin previews and checks run in a child process with a
# timeout and a memory cap on top (render_isolated), so even what slips through cannot hang the web process;
# the sender renders every email under the same bounds in a long-lived child (BoundedRenderer).

RENDER_SECONDS = 2.0
MAX_SOURCE_CHARS = {"subject": 2_000, "text": 100_000, "html": 200_000}
_MAX_WIDTH = 1_000  # a field width, indent or centring beyond this is an attack, not layout
_MAX_EXPONENT_BITS = 4_096
_CHILD_MEMORY = 512 * 1024 * 1024  # address space a render may add to the forked web process
_WIDTH = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d{4,}|\d*\.(\*|\d{4,}))")
_renders = threading.BoundedSemaphore(4)


class _LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with the size of every repetition, power and format width bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context, operator: str, left, right):
        """Check the operands' sizes, then apply the operator."""
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value):
        """str.format, with widths and nested fields checked first."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_brace_format(value.__self__)
        return wrapped


def _limited_environment(autoescape: bool) -> SandboxedEnvironment:
    env = _LimitedSandbox(undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True)
    env.globals.pop("lipsum", None)  # generates as much text as asked for
    env.filters.update(format=_format_filter, center=_bounded_filter(env.filters["center"], "width"),
                       indent=_bounded_filter(env.filters["indent"], "width"),
                       slice=_bounded_filter(env.filters["slice"], "slices"),
                       batch=_bounded_filter(env.filters["batch"], "linecount"))
    return env


def _check_binop(operator: str, left, right) -> None:
    """Refuse a repetition, concatenation or power whose result would be huge."""
    if operator == "*":
        sequence, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(sequence, str | list | tuple) and isinstance(count, int):
            _check_length(len(sequence) * max(count, 0), "a repetition")
    elif operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        _check_length(len(left) + len(right), "a concatenation")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(right) > _MAX_EXPONENT_BITS or max(abs(left), 2).bit_length() * abs(right) > _MAX_EXPONENT_BITS:
            raise SecurityError(f"the power {left} ** {right} is too large")
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(left)


def _check_length(length: int, what: str) -> None:
    if length > MAX_RENDERED_CHARS:
        raise SecurityError(f"{what} of {length} items is over the limit of {MAX_RENDERED_CHARS}")


def _check_percent_format(text: str) -> None:
    if _WIDTH.search(text):
        raise SecurityError("a %-format width or precision of 1000 or more (or '*') is not allowed")


def _check_brace_format(text: str) -> None:
    """'{:>999999999}' allocates as much as asked: widths and nested fields are bounded or refused."""
    try:
        fields = list(Formatter().parse(text))
    except ValueError as error:
        raise SecurityError(f"bad format string: {error}") from None
    for _literal, _name, spec, _conversion in fields:
        if spec and ("{" in spec or any(len(n) > 3 for n in re.findall(r"\d+", spec))):
            raise SecurityError("a format width or precision of 1000 or more (or a nested field) is not allowed")


def _format_filter(value, *args, **kwargs) -> str:
    """Jinja's `format` filter with the width check of the `%` operator."""
    _check_percent_format(str(value))
    return do_format(value, *args, **kwargs)


def _bounded_filter(original, argument: str):
    """The filter, refusing a numeric first argument (or keyword `argument`) over _MAX_WIDTH."""
    # A filter that takes the eval context or environment gets it first: the value is then second.
    first = 2 if hasattr(original, "jinja_pass_arg") else 1

    def bounded(*args, **kwargs):
        """The filter, once its size argument is checked."""
        given = kwargs.get(argument, args[first] if len(args) > first else None)
        if isinstance(given, int) and abs(given) > _MAX_WIDTH or isinstance(given, str) and len(given) > _MAX_WIDTH:
            raise SecurityError(f"{argument}={given!r} is over the limit of {_MAX_WIDTH}")
        return original(*args, **kwargs)

    if hasattr(original, "jinja_pass_arg"):
        bounded.jinja_pass_arg = original.jinja_pass_arg
    return bounded


# ---------------------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an edited template: the part, the line (when known) and what is wrong."""

    part: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.part}{f' line {self.line}' if self.line else ''}: {self.message}"


def check_source(source: TemplateSource, contexts: list[tuple[str, dict]]) -> list[Problem]:
    """Everything that stops a version from being activated; an empty list means it is safe to use."""
    return inspect_source(source, contexts)[1]


def inspect_source(source: TemplateSource, contexts: list[tuple[str, dict]], *,
                   timeout: float = RENDER_SECONDS) -> tuple[tuple[str, str, str] | None, list[Problem]]:
    """(the parts rendered with the first context, problems), worked out in one isolated child.

    Sizes, syntax and unknown placeholders are checked, then the template is rendered with each
    (label, context): a full sample, a sparse one, a real email's. Even parsing happens in the child:
    Jinja folds constant expressions while it compiles, which would run them in the web process.
    """
    problems = _check_sizes(source)
    if problems:
        return None, problems
    try:
        return run_isolated(_inspect, source, contexts, timeout=timeout)
    except RenderError as error:
        return None, [_problem(error, contexts[0][0])]


def _inspect(source: TemplateSource, contexts: list[tuple[str, dict]]) -> tuple:
    """In the child: the checks, then one render per context, stopping at the first failure."""
    problems = _check_syntax(source) or _check_names(source, contexts[0][1])
    parts = None
    for label, context in contexts if not problems else ():
        try:
            rendered = render_source(source, context)
        except RenderError as error:
            return parts, [_problem(error, label)]
        parts = parts or rendered
    return parts, problems


def _problem(error: RenderError, label: str) -> Problem:
    message = str(error)
    if error.part:
        message = re.sub(rf"^{error.part}( line \d+)?: ", "", message)
    return Problem(error.part or "template", error.line, f"{message} (rendering with {label})")


def _check_sizes(source: TemplateSource) -> list[Problem]:
    return [Problem(part, None, f"{len(getattr(source, part))} characters is over the limit of {limit}")
            for part, limit in MAX_SOURCE_CHARS.items() if len(getattr(source, part)) > limit]


def _check_syntax(source: TemplateSource) -> list[Problem]:
    problems = []
    for part, text in _parts(source):
        try:
            _environment(False).parse(text)
        except TemplateSyntaxError as error:
            problems.append(Problem(part, error.lineno, f"syntax error: {error.message}"))
    return problems


def _parts(source: TemplateSource) -> list[tuple[str, str]]:
    return [("subject", source.subject), ("text", source.text), ("html", source.html)]


def _check_names(source: TemplateSource, context: dict) -> list[Problem]:
    """Placeholders that are not in the context, including those in branches the samples never take."""
    problems = []
    known = set(context) | set(_environment(False).globals)
    for part, text in _parts(source):
        tree = _environment(False).parse(text)
        stored = {n.name for n in tree.find_all(nodes.Name) if n.ctx != "load"}
        for name in sorted(meta.find_undeclared_variables(tree) - known):
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), None)
            problems.append(Problem(part, line, f"unknown placeholder '{name}'"))
        problems += _check_attributes(part, tree, context, stored)
    return problems


def _check_attributes(part: str, tree, context: dict, stored: set[str]) -> list[Problem]:
    """`customer.nmae`: a dotted name into the context that leads nowhere."""
    problems = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        base = _resolve(node.node, context, stored)
        if isinstance(base, dict) and isinstance(key, str) and key not in base and not hasattr(dict, key):
            path = _dotted(node.node)
            problems.append(Problem(part, node.lineno, f"unknown placeholder '{path}.{key}' "
                                                       f"({path} has: {', '.join(base)})"))
    return problems


_UNKNOWN = object()


def _resolve(node, context: dict, stored: set[str]):
    """The context value a dotted expression names, or _UNKNOWN when it is not a plain path."""
    if isinstance(node, nodes.Name):
        return context.get(node.name, _UNKNOWN) if node.name not in stored else _UNKNOWN
    if isinstance(node, nodes.Getattr):
        base = _resolve(node.node, context, stored)
        return base.get(node.attr, _UNKNOWN) if isinstance(base, dict) else _UNKNOWN
    return _UNKNOWN


def _dotted(node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    return f"{_dotted(node.node)}.{node.attr}" if isinstance(node, nodes.Getattr) else "…"


# ---------------------------------------------------------------------------------------------------- isolation


def render_isolated(source: TemplateSource, context: dict, *, timeout: float = RENDER_SECONDS) -> tuple[str, str, str]:
    """render_source in a forked child, killed after `timeout` seconds and capped in memory; RenderError else."""
    return run_isolated(render_source, source, context, timeout=timeout)


def run_isolated(function, *args, timeout: float = RENDER_SECONDS):
    """function(*args) in a forked child with a memory cap, killed after `timeout`; RenderError if it fails
    (RenderLimitError when a bound stopped it)."""
    if not _renders.acquire(timeout=timeout * 3):
        raise RenderError("too many previews at once: try again in a moment")
    try:
        verdict = _run_child(function, args, timeout)
    finally:
        _renders.release()
    return _outcome(verdict)


def _outcome(verdict: tuple):
    """The value of an "ok" verdict; RenderError for "error", RenderLimitError for "limit"."""
    status, value = verdict
    if status == "ok":
        return value
    message, part, line = value
    raise (RenderLimitError if status == "limit" else RenderError)(message, part=part, line=line)


def _run_child(function, args: tuple, timeout: float) -> tuple:
    fork = multiprocessing.get_context("fork")
    receiver, sender = fork.Pipe(duplex=False)
    child = fork.Process(target=_child, args=(sender, function, args), daemon=True)
    child.start()
    sender.close()
    try:
        return _answer(receiver, timeout)
    finally:
        receiver.close()
        _stop(child)


def _answer(connection, timeout: float) -> tuple:
    """The child's verdict, or a "limit" one when it does not answer within `timeout` or dies (killed by a limit)."""
    try:
        if connection.poll(timeout):
            return connection.recv()
        return ("limit", (f"rendering took longer than {timeout:g} s (a loop that never ends?)", None, None))
    except (EOFError, OSError):  # the child died without answering: killed by a limit
        return ("limit", ("rendering used too much memory or time and was stopped", None, None))


def _stop(child) -> None:
    if child.is_alive():
        child.kill()
    child.join(1)


def _child(sender, function, args: tuple) -> None:
    """The child: cap memory and CPU, run, send the verdict; never raise (the parent reads the pipe)."""
    _cap_resources()
    sender.send(_verdict(function, args))
    sender.close()


def _verdict(function, args: tuple) -> tuple:
    """("ok", result), or ("error" | "limit", (message, part, line)): anything raised is a verdict on the template."""
    try:
        return ("ok", function(*args))
    except RenderError as error:
        status = "limit" if isinstance(error, RenderLimitError) else "error"
        return (status, (str(error)[:2000], error.part, error.line))
    except BaseException as error:  # MemoryError, RecursionError…
        status = "limit" if isinstance(error, MemoryError) else "error"
        return (status, (_describe(error)[:2000], None, _template_line(error)))


def _cap_resources() -> None:
    """A runaway allocation becomes a MemoryError in the child, and a runaway loop a SIGXCPU."""
    _cap_memory()
    _cap_cpu(last=True)


def _cap_memory() -> None:
    """The child may add _CHILD_MEMORY of address space to what it inherited; past that, MemoryError."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + _CHILD_MEMORY, used + _CHILD_MEMORY))
    except (ImportError, OSError, ValueError):
        pass  # not Linux: the parent's timeout still bounds the time


def _cap_cpu(*, last: bool) -> None:
    """SIGXCPU after RENDER_SECONDS (+3) more seconds of CPU; `last` also lowers the hard limit (no more renders)."""
    try:
        import resource

        cpu = int(time.process_time()) + int(RENDER_SECONDS) + 3
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1 if last else resource.getrlimit(resource.RLIMIT_CPU)[1]))
    except (ImportError, OSError, ValueError):
        pass


class BoundedRenderer:
    """render_source under the preview's bounds, in one long-lived child: how the sender renders.

    The preview forks a child per render (run_isolated), which costs more than sending the email; this child is
    forked once and renders one email after another, each under the same bounds: memory capped as the preview's
    child is, and RENDER_SECONDS a render, after which the child is killed and the next render forks a new one.
    Thread-safe (renders take turns); a process forked from this one gets a child of its own.
    """

    def __init__(self, timeout: float = RENDER_SECONDS):
        self.timeout = timeout
        self._lock = threading.Lock()
        self._child = self._connection = None
        self._owner = 0

    def __call__(self, source: TemplateSource, context: dict) -> tuple[str, str, str]:
        """The three parts, as render_source returns them; RenderLimitError when a bound stopped the render."""
        with self._lock:
            return _outcome(self._ask((source, context)))

    def _ask(self, request: tuple) -> tuple:
        if self._child is None or self._owner != os.getpid() or not self._child.is_alive():
            self._start()
        try:
            self._connection.send(request)
        except OSError:  # the child went away between two renders (never mid-render): start another
            self._start()
            self._connection.send(request)
        verdict = _answer(self._connection, self.timeout)
        if verdict[0] == "limit":
            self.close()  # it may still be running, or be hurt: never reused
        return verdict

    def _start(self) -> None:
        self.close()
        fork = multiprocessing.get_context("fork")
        mine, theirs = fork.Pipe()
        child = fork.Process(target=_serve, args=(theirs, mine), daemon=True, name="keepwarm-renderer")
        child.start()
        theirs.close()
        self._child, self._connection, self._owner = child, mine, os.getpid()

    def close(self) -> None:
        """Stop the child (a process forked from the owner leaves the owner's child alone)."""
        child, connection, self._child, self._connection = self._child, self._connection, None, None
        if child is not None and self._owner == os.getpid():
            connection.close()
            _stop(child)


def _serve(connection, parent_end) -> None:
    """The renderer child: each (source, context) it is sent is rendered under the bounds, until the parent goes."""
    parent_end.close()
    _close_inherited(connection.fileno())
    # A group of its own: Ctrl-C or a SIGTERM to the worker's group must not kill a render, which would read as
    # a template over its bounds. The worker's own signal handlers are not for this process.
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _cap_memory()
    parent = os.getppid()
    while _work_waiting(connection, parent):
        try:
            request = connection.recv()
        except EOFError:
            return
        _cap_cpu(last=False)
        verdict = _verdict(render_source, request)
        connection.send(verdict)
        if verdict[0] == "limit":
            return


def _close_inherited(keep: int) -> None:
    """Close every descriptor the fork copied but the pipe to the parent (and stdio), as subprocess's close_fds
    does: a long-lived child holding the parent's sockets and pipes keeps them open after the parent closes them
    (a browser driver waiting for its pipe to end, an SMTP peer waiting for a QUIT), and hangs their owners."""
    top = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 4096
    os.closerange(3, keep)
    os.closerange(keep + 1, top)


def _work_waiting(connection, parent: int) -> bool:
    """Wait for the next request; False once the parent is gone (killed -9, it never closes the pipe)."""
    while not connection.poll(5):
        if os.getppid() != parent:
            return False
    return True


# ---------------------------------------------------------------------------------------------------- samples

_SAMPLE_LINES = {"en": "Good luck with the launch in May!", "it": "In bocca al lupo per il lancio di maggio!"}
_CUSTOMER_KINDS = ("thank_you", "recontact")


def sample_context(kind: str, variant: str = "default", language: str = "en", *, sparse: bool = False) -> dict:
    """A context shaped exactly like letters.template_context's; `sparse` leaves every optional value empty."""
    from service.outbox.template_context import date_text, outcome_words

    outcome = None if sparse else _sample_outcome(kind, variant)
    customer = {"name": None, "first_name": None, "email": "jane.doe@example.com"} if sparse else \
        {"name": "Jane Doe", "first_name": "Jane", "email": "jane.doe@example.com"}
    return {
        "customer": customer,
        "rep": {"name": "Tom Baker", "first_name": "Tom", "email": "tom.baker@example.com"},
        "meeting": {"subject": "" if sparse else "Our meeting today",
                    "date_text": "" if sparse else date_text(date(2026, 3, 12), language)},
        "outcome": outcome_words(outcome, language),
        "personal_line": None if sparse else _SAMPLE_LINES.get(language, _SAMPLE_LINES["en"]),
        "links": _sample_links(kind, sparse),
        "planned": [] if sparse or kind != "rep_summary" else [_sample_planned(language)],
        "more": {"customers": 0, "emails": 0},
        "held": {"count": 0, "reason": "", "confirm": ""} if sparse or kind != "rep_summary" else
        {"count": 1, "reason": "not sure of the outcome", "confirm": "http://127.0.0.1:5000/manage/confirm/sample"},
        "evidence": [] if sparse or kind != "rep_summary" else
        [{"field": "reasons", "phrase": "the budget isn't there", "value_text": "budget"}],
        "notice": _sample_notice(kind, sparse),
    }


def _sample_outcome(kind: str, variant: str):
    from service.models import Outcome

    if kind == "thank_you" and variant == "won":
        return Outcome(outcome="won", rep_id=0, meeting_at=datetime.now(UTC))
    reasons = [variant] if kind == "recontact" and variant != "default" else ["budget"]
    people = [{"name": "Maria Rossi", "role": "CFO"}] if "consult" in reasons else []
    return Outcome(outcome="lost", cause="external" if kind != "debrief_reminder" else "unknown", rep_id=0,
                   reasons=reasons, recontact_on=date(2026, 9, 1), decision_makers=people,
                   meeting_at=datetime.now(UTC))


def _sample_links(kind: str, sparse: bool) -> dict:
    base = "https://keepwarm.example"
    manage = [] if sparse or kind != "rep_summary" else [
        {**_sample_planned("en"), "cancel": f"{base}/manage/cancel/sample",
         "postpone": f"{base}/manage/postpone/sample"}]
    return {"unsubscribe": f"{base}/unsubscribe/sample" if kind in _CUSTOMER_KINDS else "",
            "debrief": "" if sparse else f"{base}/debrief/sample", "manage": manage,
            "calendar": "" if sparse or kind in _CUSTOMER_KINDS else f"{base}/calendar/sample.ics"}


def _sample_planned(language: str) -> dict:
    from service.outbox.template_context import KIND_WORDS

    return {"kind_text": KIND_WORDS.get(language, KIND_WORDS["en"])["thank_you"], "to": "jane.doe@example.com",
            "due_text": "13 March 2026, 09:30 (Europe/Rome)", "status": "scheduled"}


def _sample_notice(kind: str, sparse: bool) -> dict:
    if kind == "rep_answer":
        return {"action": "unreadable" if sparse else "moved", "customer": "" if sparse else "Jane Doe",
                "count": 0 if sparse else 1, "date_text": "" if sparse else "1 June 2027",
                "subject": "" if sparse else "Re: Keepwarm: Jane Doe", "in_reply_to": "", "references": [],
                "outcome": "" if sparse else "lost", "cause": "" if sparse else "external",
                "people": [] if sparse else ["Maria Rossi (CFO)"], "lesson": not sparse, "released": 0 if sparse else 2,
                "canceled": 0}
    if kind != "rep_notice" or sparse:
        return {"address": "", "error": ""}
    return {"address": "jane.doe@example.com", "error": "550 5.1.1 <jane.doe@example.com>: no such user"}


def placeholders(context: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Every placeholder path in a context with an example value: ("customer.name", "Jane Doe"), ("planned[]…", …)."""
    found = []
    for name, value in context.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            found += placeholders(value, f"{path}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            found += placeholders(value[0], f"{path}[].")
        else:
            found.append((path, _example(value)))
    return found


def _example(value) -> str:
    if value is None or value == "" or value == []:
        return "(empty)"
    return str(value)[:120]
