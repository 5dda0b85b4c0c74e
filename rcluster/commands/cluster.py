"""cluster commands (to be written)."""
