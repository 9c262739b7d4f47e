"""The WeChat official account (公众号) channel: callback signatures and safe-mode encryption (``crypto``),
inbound XML and passive replies (``messages``), the API client for 客服消息, template messages, menus and
OAuth (``client``), an in-process fake of WeChat's API (``fake_api``) and the resident's side of the protocol
for tests and the development simulator (``simulate``)."""
