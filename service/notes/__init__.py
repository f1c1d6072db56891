"""Understanding the rep's note: outcome, cause, reasons, recontact date, decision makers.

Pure functions: the message facts and the rep's time zone go in, a `NoteReading` comes out.
"""

from service.notes.model import Commands, DecisionMaker, Evidence, NoteReading

__all__ = ["Commands", "DecisionMaker", "Evidence", "NoteReading", "understand"]


def __getattr__(name: str):
    """`understand` is loaded when first asked for: its phrase tables take seconds of CPU to compile, which a
    process that only sends (a worker, the web app) need not pay at every start."""
    if name == "understand":
        from service.notes.reading import understand

        return understand
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
