"""What a mail means and what it may do: intents, the proof a command needs, the decision
against the per-service transition tables, and the shipped workflows (workflows.toml).

Pure: settings and facts in, values out.
"""
