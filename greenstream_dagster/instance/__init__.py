"""Plugins of the Dagster instance (named in dagster.yaml), apart from the code location.

The webserver and the daemon load these without loading the definitions: storages that
keep one PostgreSQL connection per process, and the run coordinator that keeps two runs
of one partition day apart.
"""
