"""Notifications, in reading order: who is told (`recipients`), what the template sees
(`context`), the sandboxed templates, the composed `letter`; then the shell: `known_errors`,
the transactional `outbox` and the SMTP `sender`.

Pure: recipients, context, templates, letter. The rest read or write the store.
"""
