"""Processes: the supervisor of `keepwarm run`, the RQ worker, the private dev servers, the demo."""
