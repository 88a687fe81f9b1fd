"""Checks that return ok or a reason: SNI task rules (sni.py), record quality flags (records.py)."""
