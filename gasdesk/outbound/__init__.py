"""Messages to residents outside the web chat (WeChat, SMS): queued, sent, delivered or failed."""
