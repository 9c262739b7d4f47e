"""Live delivery: WebSocket connections of residents and staff, fed by committed events."""
