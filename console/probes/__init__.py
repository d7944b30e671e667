"""Live probes: each returns an immutable snapshot (snapshot.py)."""
