"""Background jobs and the queue seam (inline without Redis, RQ with it)."""
