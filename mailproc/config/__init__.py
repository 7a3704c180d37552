"""Typed, frozen settings: the models, and the one place that reads the configuration file
and the environment.
"""
