"""Inbound mail, read: raw bytes become a parsed mail and the facts the desk decides on.

Pure: no database, no network, no clock, no files. Parsing, quotes, fingerprints, the
subject-line command language, the automatic-mail verdict, bounce reading and
Authentication-Results.
"""
