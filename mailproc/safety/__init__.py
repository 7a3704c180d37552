"""What keeps the desk from answering robots or becoming a mail cannon: automatic mail kept
unanswered, undeliverable addresses, the storm breaker and per-sender limits, and what an
administrator reads about them. Reads and writes the store.
"""
