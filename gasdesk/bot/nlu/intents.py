"""The closed set of intents the bot understands."""

from __future__ import annotations

INTENTS: tuple[str, ...] = (
    "greeting",
    "goodbye",
    "human_agent",
    "appointment_book",
    "appointment_progress",
    "appointment_cancel",
    "balance_query",
    "account_number_query",
    "branch_info",
    "payment_howto",
    "no_gas",
    "gas_leak",
    "outage_query",
    "meter_guidance",
    "heating_not_warm",
    "complaint",
    "praise",
    "business_handling",
    "price_query",
    "safety_knowledge",
    "out_of_scope",
)

GAS_LEAK = "gas_leak"
OUT_OF_SCOPE = "out_of_scope"
