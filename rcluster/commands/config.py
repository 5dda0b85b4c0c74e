"""config commands (to be written)."""
