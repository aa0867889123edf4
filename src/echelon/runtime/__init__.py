"""Process wiring: the demo, and the background work that `worker` and `serve` run."""
