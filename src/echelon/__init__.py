"""echelon: self-hosted SMS marketing and automation."""

__version__ = "0.1.0"
