"""What Keepwarm keeps about a customer: exporting and erasing it on request."""
