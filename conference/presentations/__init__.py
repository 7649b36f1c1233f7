"""Presentation uploads: slide versions, visibility, previews."""
