"""Health checks and the landing page."""
