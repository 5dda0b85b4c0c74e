"""clients commands (to be written)."""
