-- The horizon below which events are settled: the oldest transaction that may still commit
-- rows into THIS database. pg_snapshot_xmin alone is cluster-wide, so a long transaction in
-- any other database of the server (a report, a DROP DATABASE with its checkpoint, another
-- application) held back the feed and the webhooks. A transaction still running at the
-- snapshot is passed over only when pg_stat_activity shows it running in another database:
-- a backend never changes database, so that transaction cannot write here. Anything not
-- shown so (a prepared transaction, a backend that ended meanwhile, every transaction on a
-- standby) still holds the horizon back, as before. The match is by transaction id, which no
-- two transactions share, so a stale or cached pg_stat_activity row can only hold back more.
-- The caller's own transaction, if it has written, counts as running (as in pg_snapshot_xmin).
CREATE FUNCTION rapport_settled_horizon() RETURNS xid8
LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
  SELECT least(coalesce(
    (SELECT min(running) FROM pg_snapshot_xip(s.snapshot) AS running
     WHERE NOT EXISTS (
       SELECT 1 FROM pg_stat_get_activity(NULL) AS a
       WHERE a.backend_xid = running::xid
         AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
    pg_snapshot_xmax(s.snapshot)), pg_current_xact_id_if_assigned())
  FROM (SELECT pg_current_snapshot() AS snapshot) AS s
$$;
