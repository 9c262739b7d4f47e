"""Notifications to staff (in-app, live over the staff socket) and messages to residents on their channel."""
