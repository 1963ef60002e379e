-- Orders after checkout: `cancelled` and `fulfilled`, and the order events (an outbox).
--
-- SQLite cannot alter a CHECK, so `orders` is recreated with the same columns (cart_id of 0004
-- included) and a wider status CHECK, and every index is made again. `order_lines` references
-- `orders` with ON DELETE CASCADE, and with foreign keys on, DROP TABLE runs an implicit DELETE
-- that would cascade: so the lines are first kept in a plain table, their table is dropped, the
-- orders are moved, and the lines table is made again (same columns, same key) and refilled.

CREATE TABLE order_lines_keep AS SELECT * FROM order_lines;
DROP TABLE order_lines;

CREATE TABLE orders_next (
  id               TEXT PRIMARY KEY CHECK (length(id) = 36 AND id LIKE 'ord\_%' ESCAPE '\'),
  user_key         TEXT NOT NULL CHECK (length(user_key) = 64),
  status           TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled', 'fulfilled')),
  currency         TEXT NOT NULL CHECK (length(currency) = 3),
  total_minor      INTEGER NOT NULL CHECK (total_minor >= 0),
  line_count       INTEGER NOT NULL CHECK (line_count >= 1),
  lines_verified   INTEGER CHECK (lines_verified IS NULL OR lines_verified = line_count),
  cart_version     INTEGER NOT NULL CHECK (cart_version >= 0),
  -- Personal data: returned to its owner, never logged.
  email            TEXT,
  shipping_address TEXT,
  created_at       INTEGER NOT NULL,
  cart_id          TEXT CHECK (cart_id IS NULL OR length(cart_id) BETWEEN 1 AND 64)
);
INSERT INTO orders_next (id, user_key, status, currency, total_minor, line_count, lines_verified,
                         cart_version, email, shipping_address, created_at, cart_id)
  SELECT id, user_key, status, currency, total_minor, line_count, lines_verified,
         cart_version, email, shipping_address, created_at, cart_id
  FROM orders;
DROP TABLE orders;
ALTER TABLE orders_next RENAME TO orders;
CREATE INDEX orders_by_user ON orders (user_key, created_at DESC, id DESC);
CREATE UNIQUE INDEX orders_one_per_cart ON orders (user_key, cart_id, cart_version);

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
INSERT INTO order_lines (order_id, position, sku, name, unit_price_minor, quantity, line_total_minor)
  SELECT order_id, position, sku, name, unit_price_minor, quantity, line_total_minor
  FROM order_lines_keep;
DROP TABLE order_lines_keep;

-- One row per order transition, written in the transition's own batch (the outbox), and the
-- transition's guard: `id` is `evt_` + a hash of (order id, type), so an order has at most one
-- event of each type. A transition's batch inserts its event with `INSERT OR IGNORE` stamped
-- with the attempt's random `attempt`; the statements that must run once (the stock returned
-- by a cancel) run only if the row carries this attempt's stamp, so two cancels at once make
-- one transition and one event.
--
-- `body` is the webhook body, fixed when the event is written (a retry sends the same bytes).
-- `delivery`: pending → delivered (a 2xx), or undelivered (the message reached the dead-letter
-- queue). `attempts` counts deliveries tried; `touched_at` is when the event was last attempted
-- or handed to the queue by the sweep (milliseconds), which re-sends pending events left
-- untouched for too long.
CREATE TABLE order_events (
  id           TEXT PRIMARY KEY CHECK (length(id) = 36 AND id LIKE 'evt\_%' ESCAPE '\'),
  order_id     TEXT NOT NULL,
  type         TEXT NOT NULL CHECK (type IN ('order.confirmed', 'order.cancelled', 'order.fulfilled')),
  body         TEXT NOT NULL,
  attempt      TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  delivery     TEXT NOT NULL DEFAULT 'pending' CHECK (delivery IN ('pending', 'delivered', 'undelivered')),
  attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  touched_at   INTEGER,
  delivered_at INTEGER,
  last_status  INTEGER
);
CREATE INDEX order_events_by_order ON order_events (order_id, created_at);
-- The sweep: pending events, oldest first.
CREATE INDEX order_events_pending ON order_events (delivery, created_at);
