"""live models (filled in by the live issue)."""
