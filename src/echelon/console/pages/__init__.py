"""The console's pages, one module per area, each registering its routes."""
