"""The web pages: one blueprint per area (health, and later admin, debrief, unsubscribe)."""


def no_store(response):
    """Never cached, by the browser or anything between: pages reached by a personal link or holding a session."""
    response.headers["Cache-Control"] = "no-store"
    return response
