-- The catalogue. A product's `stock` can never go negative: a checkout batch whose stock
-- decrement would break the CHECK fails as a whole, so the catalogue cannot be oversold.
CREATE TABLE products (
  sku         TEXT PRIMARY KEY CHECK (length(sku) BETWEEN 1 AND 64),
  name        TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
  currency    TEXT NOT NULL CHECK (length(currency) = 3),
  stock       INTEGER NOT NULL CHECK (stock >= 0),
  version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
  updated_at  TEXT NOT NULL
);

-- A counter bumped by every catalogue write; part of every cached listing's key.
CREATE TABLE catalogue_meta (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  generation INTEGER NOT NULL
);
INSERT INTO catalogue_meta (id, generation) VALUES (1, 1);
