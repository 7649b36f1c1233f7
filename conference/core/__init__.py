"""Shared building blocks: database base, errors, permissions, time, security."""
