"""Pure helpers of the web console."""
