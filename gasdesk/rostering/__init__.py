"""Rostering (智能排班): shift templates, rules, forecast, CP-SAT roster generation, publishing."""
