-- A product's revision: the catalogue generation of the last change a shopper can see of it
-- (price, text, its stock band or, while low, its count; see src/catalogue/store.rs). The
-- key of the product's cached page carries it, so a checkout that leaves a product's band
-- alone, or changes another product, leaves the page cached. Taken from the one generation
-- counter (which never goes back), a revision is never reused, not even by a product that is
-- deleted and created again. Existing rows start at the current generation.
ALTER TABLE products ADD COLUMN revision INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0);
UPDATE products SET revision = (SELECT generation FROM catalogue_meta WHERE id = 1);
