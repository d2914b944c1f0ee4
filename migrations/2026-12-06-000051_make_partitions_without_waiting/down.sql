-- The first version (migration 2026-12-05-000052).
CREATE OR REPLACE FUNCTION rapport_make_partitions(parent text, months_ahead integer,
                                        at timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    made integer := 0;
    month timestamptz;
BEGIN
    FOR i IN 0..months_ahead LOOP
        month := utc_month(at, i);
        CONTINUE WHEN to_regclass(quote_ident(parent || to_char(month AT TIME ZONE 'UTC', '_YYYY_MM')))
                      IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           parent || to_char(month AT TIME ZONE 'UTC', '_YYYY_MM'), parent,
                           uuid_v7_floor(month), uuid_v7_floor(utc_month(month, 1)));
            made := made + 1;
        EXCEPTION WHEN invalid_object_definition THEN
            -- Already covered (by `<parent>_before`): nothing to make.
            NULL;
        END;
    END LOOP;
    RETURN made;
END
$$;
