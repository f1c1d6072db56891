"""Sending: templates rendered in Jinja's sandbox, composed with safe headers, sent over SMTP exactly once."""
