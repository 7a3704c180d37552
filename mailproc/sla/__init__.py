"""Service levels. `clocks`, `timeline` and `ladder` are pure business-time arithmetic; `state`
keeps the stored SLA state true inside the caller's transaction and `views` reads it for the
CLI (both use the store).
"""
