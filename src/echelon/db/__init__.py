"""Storage: the engine, the table metadata and the migrations that build it."""
