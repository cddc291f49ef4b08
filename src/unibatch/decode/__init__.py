"""Decoding result files into store records: read a provider's results, normalise, price
and pack each row.

This is the per-row hot path of a large batch. It runs in the ingesting process or, for
large jobs, in a helper process (`process.Decoder`, `child.py`) so that download and
parsing use a second core while the ingesting process writes to the database. Nothing
here imports the store or SQLAlchemy: the helper process stays small.
"""
