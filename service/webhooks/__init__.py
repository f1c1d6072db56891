"""Signed webhooks: endpoints admins register, and the delivery of the events service/events.py records."""
