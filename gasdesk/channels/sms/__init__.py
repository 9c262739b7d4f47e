"""The SMS channel: provider adapters (Aliyun Dysmsapi, Tencent Cloud SMS, a log-only default), their in-process
fakes (tests, the development simulator), delivery-receipt and uplink callback parsing, and message templates.

- ``providers``: ``provider_from_settings(settings)`` → an ``SmsProvider`` whose ``send`` returns a
  ``SendResult`` or raises ``SendFailed`` (``gasdesk/channels/sending.py``).
- ``fake_aliyun`` / ``fake_tencent``: ASGI apps that check signatures exactly as the providers do.
- ``callbacks``: receipts and replies pushed by the providers, normalised.
- ``templates``: the template catalogue and the checks of template variables.
"""
