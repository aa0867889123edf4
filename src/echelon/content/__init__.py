"""Message content: templates, rendering, composition, part counting, word checks, pricing."""
