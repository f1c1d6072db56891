"""Understanding the rep's note: outcome, cause, reasons, recontact date, decision makers.

Pure functions: the message facts and the rep's time zone go in, a `NoteReading` comes out.
"""

from service.notes.reading import Commands, DecisionMaker, Evidence, NoteReading, understand

__all__ = ["Commands", "DecisionMaker", "Evidence", "NoteReading", "understand"]
