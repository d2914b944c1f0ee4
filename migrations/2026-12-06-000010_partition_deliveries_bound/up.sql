-- Partitioned history (issue 24): `webhook_deliveries` by month, the month of its event, so
-- that retention drops a month of deliveries with its month of events. Step 1 of 4.
--
-- The table stays partitioned by RANGE (id), with `id` its whole primary key (the attempts'
-- and the replays' foreign keys, and every lookup by id, stay as they are and reach one
-- partition): from here on a delivery's id carries its event's instant in its first 48 bits
-- (the UUIDv7 time), so a delivery lands in its event's month. A delivery made by the
-- fan-out takes an id derived from its webhook and event, so the fan-out's "one delivery
-- per webhook and event" is the primary key itself: the unique index on
-- (webhook_id, event_id), which would have to include the partition key, is no longer
-- needed for new rows (it stays on the rows from before, `webhook_deliveries_before`).

-- A UUIDv7 in the same millisecond as `of` (a replay's, a ping's or an attempt's id).
CREATE FUNCTION uuid_v7_beside(of uuid) RETURNS uuid LANGUAGE sql VOLATILE STRICT AS $$
    SELECT encode(overlay(uuid_send(uuid_v7()) PLACING substring(uuid_send(of) FROM 1 FOR 6)
                          FROM 1 FOR 6), 'hex')::uuid
$$;

-- The id of the fan-out's delivery of `event` to `webhook`: the event's millisecond, then
-- 74 bits of the MD5 of both ids (with the UUIDv7 version and variant bits), the same
-- every time for the same pair.
CREATE FUNCTION webhook_delivery_id(webhook uuid, event uuid) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(
        set_byte(set_byte(
            overlay(decode(md5(uuid_send(webhook) || uuid_send(event)), 'hex')
                    PLACING substring(uuid_send(event) FROM 1 FOR 6) FROM 1 FOR 6),
            6, 112 | (get_byte(decode(md5(uuid_send(webhook) || uuid_send(event)), 'hex'), 6) & 15)),
            8, 128 | (get_byte(decode(md5(uuid_send(webhook) || uuid_send(event)), 'hex'), 8) & 63)),
        'hex')::uuid
$$;

-- The rows already there become the partition `webhook_deliveries_before`: their bound,
-- NOT VALID (a moment's lock), proved by the next step while writes go on.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_before_bound '
                   'CHECK (id < %L) NOT VALID', uuid_v7_floor(utc_month(now(), 1)));
END
$$;
