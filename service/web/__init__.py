"""The web pages: one blueprint per area (health, and later admin, debrief, unsubscribe)."""
