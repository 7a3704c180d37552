"""Where mail comes from: files and folders for `ingest`, IMAP and Maildir for the daemon."""
