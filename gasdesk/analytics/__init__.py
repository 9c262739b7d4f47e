"""Analytics: facts from the domain events, hourly roll-ups, and the figures reports read (service.py)."""
