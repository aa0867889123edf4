"""Compliance: who may receive what, and when — the gate every message passes twice."""
