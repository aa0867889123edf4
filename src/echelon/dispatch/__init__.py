"""Sending the outbox: channels as configured, routing, and the dispatcher."""
