-- The schema the driver matrix (tests/drivers.rs) reads: tables with
-- arrays, a composite type, an enum, json and jsonb, timestamps with time
-- zone, a foreign key, an index and a view. Loaded straight into a fresh
-- database, not through airlock. Values are fixed so that dumps taken at
-- different times are equal.

CREATE TYPE mood AS ENUM ('calm', 'busy', 'away');
CREATE TYPE address AS (street text, city text, zip int);

CREATE TABLE people (
    id serial PRIMARY KEY,
    name text NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    scores int[],
    home address,
    mood mood,
    profile jsonb,
    extra json,
    created_at timestamptz NOT NULL DEFAULT '2024-01-02 03:04:05+00',
    birthday date,
    balance numeric(12, 2)
);
COMMENT ON TABLE people IS 'who orders';
CREATE INDEX people_name_idx ON people (name);

CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    person_id int NOT NULL REFERENCES people (id),
    amount numeric(10, 2) NOT NULL,
    placed_at timestamptz NOT NULL,
    note text
);
CREATE INDEX orders_person_idx ON orders (person_id);

CREATE VIEW people_summary AS
    SELECT p.id, p.name, count(o.id) AS orders, coalesce(sum(o.amount), 0) AS total
    FROM people p LEFT JOIN orders o ON o.person_id = p.id
    GROUP BY p.id, p.name;

INSERT INTO people (name, tags, scores, home, mood, profile, extra, created_at, birthday, balance)
SELECT 'person ' || g,
       ARRAY['tag' || g, 'all'],
       ARRAY[g, g * 10, g * 100],
       ROW('street ' || g, CASE WHEN g % 2 = 0 THEN 'Lyon' ELSE 'Oslo' END, 1000 + g)::address,
       (ARRAY['calm', 'busy', 'away'])[1 + g % 3]::mood,
       jsonb_build_object('level', g, 'flags', jsonb_build_array(g % 2 = 0)),
       json_build_object('note', 'n' || g),
       timestamptz '2024-01-02 03:04:05+00' + g * interval '1 day 1 hour',
       date '1990-01-01' + g * 100,
       g * 12.5
FROM generate_series(1, 12) g;

INSERT INTO orders (person_id, amount, placed_at, note)
SELECT 1 + g % 12, g * 1.25, timestamptz '2024-03-01 12:00:00+00' + g * interval '3 hours',
       CASE WHEN g % 4 = 0 THEN NULL ELSE 'order ' || g END
FROM generate_series(1, 40) g;

ANALYZE people;
ANALYZE orders;

-- Large objects: pg_dump reads them through libpq's large-object calls
-- (FunctionCall messages by OID: lo_open for reading, loread, lo_close).
SELECT lo_from_bytea(424242, convert_to(repeat('a large object ', 4000), 'UTF8'));
SELECT lo_from_bytea(424243, '\x00ff00ff'::bytea);
COMMENT ON LARGE OBJECT 424242 IS 'dumped through airlock';
