"""Follow-up visits (回访) after a ticket is resolved: survey, retries, and what dissatisfaction triggers."""
