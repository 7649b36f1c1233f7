"""presentations models (filled in by the presentations issue)."""
