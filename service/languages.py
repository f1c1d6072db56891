"""The languages Keepwarm writes in: a rep's language, the email templates, the pages and the calendar feed.

One list at the bottom of the flow, so every stage reads the same one: a language is added here and then given
its templates and its catalog (README, "Adding a language").
"""

from __future__ import annotations

LANGUAGES = ("en", "it")
