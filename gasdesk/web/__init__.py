"""The ASGI application, shared page templates and static files."""
