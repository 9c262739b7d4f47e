"""Customers, their accounts (户号), addresses and the billing-system interface."""
