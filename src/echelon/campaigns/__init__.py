"""Campaigns: broadcasts to an audience, planned into the outbox in set-based batches."""
