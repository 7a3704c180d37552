"""mailproc: e-mail driven ITIL incident management."""

__version__ = "0.1.0"
