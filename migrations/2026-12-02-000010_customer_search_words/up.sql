-- Customer search, third version: what a page of search results reads must not grow with the
-- number of matches. The trigram index over each customer's whole search text made a common
-- or short word rank all its matches (14 000 for `smith`: 0.5 s) and a full name intersect two
-- large trigram sets (`mary smiht`: 110 ms).
--
-- A customer's words: of the name, the organisation name and the email's local part, split at
-- anything not a letter or digit, lower case, two characters or more.
--  - customers.search_words holds them (a generated column), with a GIN index: the customers
--    holding one of some words for each typed word are an intersection inside the index.
--  - customer_search_words holds them one row each, a word's customers in id order: the best
--    page of a one-word search reads its page, not all the word's customers.
--  - search_vocabulary holds every distinct word with a letter, with a trigram index: the words
--    near what was typed (typos, beginnings of words).
-- Triggers keep the last two in step with every write, bulk ones included.

CREATE FUNCTION customer_words(name text, organization_name text, email text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT w ORDER BY w), '{}') FROM regexp_split_to_table(
        lower(coalesce(name, '') || ' ' || coalesce(organization_name, '') || ' ' ||
              split_part(coalesce(email, ''), '@', 1)),
        '[^[:alnum:]]+') AS w
    WHERE char_length(w) >= 2
$$;

ALTER TABLE customers ADD COLUMN search_words text[] NOT NULL
    GENERATED ALWAYS AS (customer_words(name, organization_name, email)) STORED;
CREATE INDEX customers_search_words_idx ON customers USING gin (search_words)
    WHERE deleted_at IS NULL;

CREATE TABLE customer_search_words (
    word        text NOT NULL,
    customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE
);
INSERT INTO customer_search_words (word, customer_id)
SELECT w, c.id FROM customers c, unnest(c.search_words) AS w;
ALTER TABLE customer_search_words ADD PRIMARY KEY (word, customer_id);
CREATE INDEX customer_search_words_customer_idx ON customer_search_words (customer_id, word);

CREATE TABLE search_vocabulary (word text PRIMARY KEY);
INSERT INTO search_vocabulary (word)
SELECT DISTINCT word FROM customer_search_words WHERE word ~ '[^0-9]';
CREATE INDEX search_vocabulary_trgm_idx ON search_vocabulary USING gist (word gist_trgm_ops);

-- Set-wise for bulk inserts (imports): one statement per inserting statement. Vocabulary words
-- are inserted in order, so that two writers adding the same new words cannot deadlock.
CREATE FUNCTION customers_words_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH words AS (
        INSERT INTO customer_search_words (word, customer_id)
        SELECT w, n.id FROM added n, unnest(n.search_words) AS w
        RETURNING word)
    INSERT INTO search_vocabulary (word)
    SELECT DISTINCT word FROM words WHERE word ~ '[^0-9]' ORDER BY word
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_words_inserted AFTER INSERT ON customers
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION customers_words_inserted();

CREATE FUNCTION customers_words_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_search_words
    WHERE customer_id = NEW.id AND NOT word = ANY (NEW.search_words);
    WITH words AS (
        INSERT INTO customer_search_words (word, customer_id)
        SELECT w, NEW.id FROM unnest(NEW.search_words) AS w
        ON CONFLICT DO NOTHING
        RETURNING word)
    INSERT INTO search_vocabulary (word)
    SELECT word FROM words WHERE word ~ '[^0-9]' ORDER BY word
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_words_updated AFTER UPDATE OF name, organization_name, email ON customers
    FOR EACH ROW
    WHEN (OLD.search_words IS DISTINCT FROM NEW.search_words)
    EXECUTE FUNCTION customers_words_updated();

-- Phone fragments (`q` of digits) search the phone alone.
DROP INDEX customers_search_idx;
CREATE INDEX customers_phone_search_idx ON customers USING gin (phone gin_trgm_ops)
    WHERE phone IS NOT NULL AND deleted_at IS NULL;

ANALYZE customers;
ANALYZE customer_search_words;
ANALYZE search_vocabulary;
