-- Orders and their lines, written by checkout in one D1 batch together with the stock
-- decrement (`products.stock >= 0` makes an oversell fail the whole batch), and the D1
-- backend of idempotency records (IDEMPOTENCY_BACKEND=d1).

-- An order. `id` is derived from the idempotency record (user, key, creation time), so a
-- retried checkout can never insert a second order: the primary key refuses it.
CREATE TABLE orders (
  id               TEXT PRIMARY KEY CHECK (length(id) = 36 AND id LIKE 'ord\_%' ESCAPE '\'),
  user_key         TEXT NOT NULL CHECK (length(user_key) = 64),
  status           TEXT NOT NULL CHECK (status IN ('confirmed')),
  currency         TEXT NOT NULL CHECK (length(currency) = 3),
  total_minor      INTEGER NOT NULL CHECK (total_minor >= 0),
  line_count       INTEGER NOT NULL CHECK (line_count >= 1),
  -- Set by the last statement of the checkout batch to the number of lines whose product
  -- still exists at the price charged; anything but `line_count` fails the batch, so an
  -- order is never written against a product deleted or repriced mid-checkout.
  lines_verified   INTEGER CHECK (lines_verified IS NULL OR lines_verified = line_count),
  cart_version     INTEGER NOT NULL CHECK (cart_version >= 0),
  -- Personal data: returned to its owner, never logged.
  email            TEXT,
  shipping_address TEXT,
  created_at       INTEGER NOT NULL
);

-- The listing: one user's orders, newest first (keyset pagination on created_at, id).
CREATE INDEX orders_by_user ON orders (user_key, created_at DESC, id DESC);

CREATE TABLE order_lines (
  order_id         TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  position         INTEGER NOT NULL CHECK (position >= 0),
  sku              TEXT NOT NULL,
  name             TEXT NOT NULL,
  unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
  quantity         INTEGER NOT NULL CHECK (quantity >= 1),
  line_total_minor INTEGER NOT NULL CHECK (line_total_minor >= 0),
  PRIMARY KEY (order_id, position)
);

-- Idempotency records (IDEMPOTENCY_BACKEND=d1); the same columns as the Durable Object's
-- `records` table. `key` is SHA-256 of (user, method, route, client key); `attempt` is the
-- claim's token, the version used by conditional updates; times are milliseconds.
CREATE TABLE idempotency_records (
  key          TEXT PRIMARY KEY CHECK (length(key) = 64),
  fingerprint  TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
  attempt      TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  locked_until INTEGER NOT NULL,
  status       INTEGER,
  content_type TEXT,
  location     TEXT,
  body         TEXT
);

-- The scheduled cleanup deletes by expiry.
CREATE INDEX idempotency_records_by_expiry ON idempotency_records (expires_at);
