"""The web/H5 chat widget and its WebSocket transport."""
