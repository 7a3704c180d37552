"""The use cases, each one write transaction: apply a mail (`mail`; replies waiting for their
parent in `waiting`, queries answered in `queries`, `[ACK INC-n]` mails in `acks`), correct an
incident from the command line (`admin`), close timed-out incidents and remind reporters
(`timeouts`), run the escalation pass (`escalations`, storms folded by `folding`), send the
digests (`digest`), the Known Error Database's problems (`problems`); `attempts` keeps the
crash marks of poison mail; `writes` is what they share to change an incident, `outcome` what a
mail source is told. The one place that opens a write transaction.
"""
