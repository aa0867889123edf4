"""Audience: contacts, consent, suppression, events and their bulk import."""
