"""Channels residents use: web/H5 chat, WeChat, SMS, voice. Each adapts to the same conversation pipeline."""
