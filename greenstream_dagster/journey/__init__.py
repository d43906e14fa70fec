"""The record journey (SPEC §9): one reading's way from its landing line to the lake, as a story.

`facts` holds what is known, `gather` reads it from PostgreSQL, S3 and Dagster,
`points` and `story` explain it without touching a store, `command` is
`greenstream journey`.
"""
