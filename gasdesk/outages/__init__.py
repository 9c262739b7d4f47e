"""Announced outages (计划停气/停暖) by area; the bot checks them before suggesting a repair."""
