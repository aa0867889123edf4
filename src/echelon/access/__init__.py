"""Who may do what: users, sessions, API keys, roles, rate limits and the audit log."""
