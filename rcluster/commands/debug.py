"""debug commands (to be written)."""
