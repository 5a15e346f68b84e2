"""ClickHouse: connections, numbered DDL migrations and the batching writer. Nothing else writes DDL."""
