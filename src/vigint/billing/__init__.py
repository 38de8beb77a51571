"""Billing: usage metered per key while streams run, and invoices priced from it."""
