"""Users, roles, login, API tokens and the per-route access rules."""
