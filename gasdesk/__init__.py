"""gasdesk: omnichannel, AI-first customer service for gas and district-heating utilities."""

__version__ = "0.1.0"
