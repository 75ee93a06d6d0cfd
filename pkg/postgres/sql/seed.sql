-- The sample catalog (pkg/product/catalog.json, passed as $1) as rows of products.
-- Ids already present are left alone, so seeding twice changes nothing and never
-- undoes an edit.
INSERT INTO products (id, sku, name, description, price_amount, price_currency, stock,
                      category, images, updated_at)
SELECT p->>'id', p->>'sku', p->>'name', p->>'description',
       (p->'price'->>'amount')::bigint, p->'price'->>'currency', (p->>'stock')::integer,
       p->>'category',
       ARRAY(SELECT e FROM jsonb_array_elements_text(p->'images') WITH ORDINALITY AS i(e, n)
             ORDER BY n),
       (p->>'updatedAt')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS p
ON CONFLICT (id) DO NOTHING
