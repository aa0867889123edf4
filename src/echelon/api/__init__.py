"""HTTP: thin handlers that validate, call one service function and map errors."""
