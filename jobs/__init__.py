"""Thin RQ entry points: each takes ids, loads state from the database and calls into service/."""
