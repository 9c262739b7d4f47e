"""Embedded media back-end: a SIP user agent server on UDP with G.711 RTP (see ``ua.SipEndpoint``)."""
