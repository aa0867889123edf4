"""Workspaces: the tenants. Every row of customer data belongs to exactly one."""
