"""introspection commands (to be written)."""
