"""Process plumbing the shell shares: logging set-up, the wake flag, retry backoff, progress.
Knows nothing of mail.
"""
