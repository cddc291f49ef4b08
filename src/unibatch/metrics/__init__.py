"""Prometheus metrics: what each process counts (`counters`) and fleet-wide aggregates
read from the store at scrape time (`collector`).

Nothing is imported here: the counters are imported by the provider HTTP client, which
the ingest decoder helper loads too, and the collector reads the store (SQLAlchemy), which
that helper must not carry (`unibatch.decode`)."""
