"""Events (each conference edition) and people's roles in them."""
