"""The use cases, each one write transaction: apply a mail, run the escalation pass, the
Known Error Database's problems. The one place that opens a write transaction.
"""
