-- Forgets the vocabulary words no customer holds any more, in one statement: the lock that
-- keeps a concurrent insert from losing its word is held only inside it. Run from the service
-- as a transaction of two statements, a task cancelled between them (a stopping instance)
-- left its connection idle in a transaction that held the lock, and every customer insert
-- waited behind it. The lock is not waited for long: inserts queue behind a waiting LOCK too.
CREATE FUNCTION forget_unused_search_words() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    forgotten bigint;
BEGIN
    SET LOCAL lock_timeout = '2s';
    LOCK TABLE search_vocabulary IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM search_vocabulary v
    WHERE NOT EXISTS (SELECT 1 FROM customer_search_words cw WHERE cw.word = v.word);
    GET DIAGNOSTICS forgotten = ROW_COUNT;
    RETURN forgotten;
END
$$;
