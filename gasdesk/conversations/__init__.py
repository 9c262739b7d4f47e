"""Conversations across every channel: messages, the lifecycle state machine, satisfaction, history."""
