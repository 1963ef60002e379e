-- One order per cart state. A cart is named by its id (made with the cart, kept in its KV
-- value; never repeated, unlike versions, which restart when a cart expires) and its version.
-- Two checkouts of the same (user, cart, version) under different Idempotency-Keys (two tabs,
-- a client that makes a new key on retry, a location still reading the un-emptied cart from
-- KV) would otherwise both succeed; this index makes the second order's batch fail as a whole,
-- and checkout answers it 409 /problems/cart-changed. Orders written before it have no
-- cart_id (NULL values never conflict).
ALTER TABLE orders ADD COLUMN cart_id TEXT CHECK (cart_id IS NULL OR length(cart_id) BETWEEN 1 AND 64);
CREATE UNIQUE INDEX orders_one_per_cart ON orders (user_key, cart_id, cart_version);
