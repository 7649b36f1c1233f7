"""Accounts, login sessions and API tokens."""
