"""Process wiring: the demo now; ``serve`` and ``worker`` as the pipeline lands."""
