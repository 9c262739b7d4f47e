"""The phone hotline: calls as conversations (channel ``voice``), the IVR, media back-ends (embedded SIP/RTP,
FreeSWITCH over ESL), prompts (TTS) and speech input (ASR adapters)."""
