"""The use cases, each one write transaction: apply a mail (`mail`), close timed-out incidents
(`timeouts`), run the escalation pass (`escalations`), the Known Error Database's problems
(`problems`); `writes` is what they share to change an incident, `outcome` what a mail source
is told. The one place that opens a write transaction.
"""
