"""Tracking: per-recipient short links and their clicks, coupons, conversion attribution."""
