"""The adversarial security suite (issue 8)."""
