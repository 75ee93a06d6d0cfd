-- The products table that postgres.Source reads, with the bookkeeping that lets every
-- cache hear of a change: a version bumped on every change, the id of the transaction
-- that made the change (so a listener that was away can ask what changed while it was
-- gone), tombstones for deleted rows, and a NOTIFY of the changed id.
--
-- Applied by `go run ./scripts/migrate` (postgres.Migrate), once, inside a transaction.
-- Tables are created in the first schema of the connection's search_path.

CREATE TABLE products (
    id             text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    sku            text        NOT NULL,
    name           text        NOT NULL,
    description    text        NOT NULL DEFAULT '',
    price_amount   bigint      NOT NULL CHECK (price_amount >= 0),
    price_currency text        NOT NULL CHECK (price_currency ~ '^[A-Z]{3}$'),
    stock          integer     NOT NULL DEFAULT 0 CHECK (stock >= 0),
    category       text        NOT NULL,
    images         text[]      NOT NULL DEFAULT '{}',
    -- updated_at is served as the product's updatedAt. The trigger sets it to now()
    -- unless the change sets it itself.
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- version counts the row's changes: 1 when inserted, +1 on every UPDATE.
    version        bigint      NOT NULL DEFAULT 1,
    -- changed_xid is the transaction that last wrote the row. A listener compares it
    -- with a snapshot it took earlier (pg_visible_in_snapshot) to find every change
    -- committed since, whatever order the commits came in.
    changed_xid    xid8        NOT NULL DEFAULT pg_current_xact_id()
);

-- Deleted ids, so that a listener catching up after a gap hears of deletions too.
-- id '*' records a TRUNCATE: everything changed. Rows here are few and small; they may
-- be pruned once older than any listener's gap (a day is plenty).
CREATE TABLE product_tombstones (
    id          text PRIMARY KEY,
    changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    deleted_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX products_changed_xid ON products (changed_xid);

CREATE FUNCTION products_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := 1;
    ELSE
        NEW.version := OLD.version + 1;
        IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
            NEW.updated_at := now();
        END IF;
    END IF;
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;

CREATE TRIGGER products_bump BEFORE INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_bump();

-- One notification per changed id, on the channel "<schema>.product_changes", so two
-- schemas of one database (two stages, two test runs) do not hear each other. The
-- payload is the id alone (at most 64 bytes; NOTIFY's limit is 8000), and PostgreSQL
-- folds identical notifications of one transaction into one. Listeners get them only
-- once the transaction commits, in commit order.
CREATE FUNCTION products_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    channel text := TG_TABLE_SCHEMA || '.product_changes';
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify(channel, OLD.id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- An insert matters too: the id may be cached as "not found".
        PERFORM pg_notify(channel, NEW.id);
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.id <> OLD.id) THEN
        INSERT INTO product_tombstones (id) VALUES (OLD.id)
            ON CONFLICT (id) DO UPDATE SET changed_xid = pg_current_xact_id(), deleted_at = now();
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER products_notify AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION products_notify();

CREATE FUNCTION products_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.product_changes', '*');
    INSERT INTO product_tombstones (id) VALUES ('*')
        ON CONFLICT (id) DO UPDATE SET changed_xid = pg_current_xact_id(), deleted_at = now();
    RETURN NULL;
END
$$;

CREATE TRIGGER products_truncated AFTER TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION products_truncated();
