"""One router per resource under /v1 (plus health probes at the root)."""
