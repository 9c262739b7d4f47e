"""Alembic migrations, shipped inside the package so `gasdesk db upgrade` works wherever it is installed."""
