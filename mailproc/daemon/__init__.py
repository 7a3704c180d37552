"""The long-running process: sources, the sender and the periodic jobs in one loop."""
