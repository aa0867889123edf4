"""The ``echelon`` command."""
