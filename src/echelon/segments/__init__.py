"""Segments: a JSON definition language over contacts and their behaviour, compiled
to one SQL query."""
