// The storefront's pure decisions: money formatting, stock wording, problem messages and the checkout retry
// policy. No DOM, no fetch, no clock: app.js does the I/O and asks this module what to do, and
// tests/worker/storefront.test.mjs checks it directly under Node.

/** ISO 4217 exponent 0 among the currencies the API accepts; every other one has 2. */
const ZERO_DECIMAL = new Set(['CLP', 'ISK', 'JPY', 'KRW', 'VND']);

/** The number of minor digits of an ISO 4217 currency (amounts are integer minor units). */
export function minorDigits(currency) {
  return ZERO_DECIMAL.has(currency) ? 0 : 2;
}

/**
 * Formats an integer amount of minor units, e.g. (1250, 'EUR') → "€12.50". The division is
 * done on the integer's digits (a string), never as a float sum, so large totals stay exact.
 */
export function formatMoney(minor, currency, locale) {
  if (!Number.isSafeInteger(minor) || typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) {
    return '—';
  }
  const digits = minorDigits(currency);
  const negative = minor < 0;
  const text = String(Math.abs(minor)).padStart(digits + 1, '0');
  const major = digits === 0 ? text : `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  const fmt = new Intl.NumberFormat(locale, {
    style: 'currency',
    currency,
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  // Intl.NumberFormat accepts decimal strings exactly (ES2023 "Intl.NumberFormat v3").
  return fmt.format(`${negative ? '-' : ''}${major}`);
}

/**
 * What the page says about a product's stock: its band (`availability`), with the count only
 * while low ("Only 3 left"), as the API shows it; '' for a product without one.
 */
export function availabilityText(product) {
  switch (product?.availability) {
    case 'in_stock':
      return 'In stock';
    case 'low_stock':
      return Number.isSafeInteger(product.stock_left) ? `Only ${product.stock_left} left` : 'Low stock';
    case 'out_of_stock':
      return 'Out of stock';
    default:
      return '';
  }
}

/** Whether the page offers "Add to cart" for a product: in stock or low, never out. */
export function canBuy(product) {
  return product?.availability === 'in_stock' || product?.availability === 'low_stock';
}

/**
 * What to tell a person about a problem+json body, and what the page should do next.
 * `nameOf(sku)` turns a sku into a product name when the page knows it.
 * Returns { text, action } with action one of 'sign-in', 'reload-cart', 'retry', 'none'.
 */
export function describeProblem(problem, nameOf = (sku) => sku) {
  const type = problem && typeof problem.type === 'string' ? problem.type : '';
  switch (type) {
    case '/problems/missing-token':
      return { text: 'Please sign in first.', action: 'sign-in' };
    case '/problems/invalid-token':
      return { text: 'Your sign-in is no longer valid. Please sign in again.', action: 'sign-in' };
    case '/problems/insufficient-scope':
      return { text: 'Your account is not allowed to do that.', action: 'none' };
    case '/problems/cart-changed':
      return {
        text: 'Your cart changed since you last saw it. Please review it and place the order again.',
        action: 'reload-cart',
      };
    case '/problems/price-changed': {
      const total = formatMoney(problem.total_minor, problem.currency);
      return {
        text: `A price changed: the total is now ${total}. Please review your cart and place the order again.`,
        action: 'reload-cart',
      };
    }
    case '/problems/precondition-failed':
      return { text: 'Your cart was changed elsewhere. It has been reloaded; please try again.', action: 'reload-cart' };
    case '/problems/out-of-stock': {
      const sku = typeof problem.sku === 'string' ? problem.sku : null;
      const what = sku ? `“${nameOf(sku) || sku}”` : 'an item in your cart';
      return { text: `Sorry, there is not enough stock of ${what}. Lower the quantity or remove it.`, action: 'reload-cart' };
    }
    case '/problems/order-not-cancellable':
      return { text: 'This order was already fulfilled: it can no longer be cancelled.', action: 'none' };
    case '/problems/request-in-flight':
      return { text: 'Your order is still being processed…', action: 'retry' };
    case '/problems/invalid-value':
      return { text: problem.detail || 'That value is not acceptable.', action: 'none' };
    case '/problems/not-found':
      return { text: 'That item no longer exists.', action: 'none' };
    case '/problems/rate-limited':
    case '/problems/unavailable':
      return { text: 'The shop is busy right now. Please try again in a moment.', action: 'retry' };
    default:
      return { text: (problem && (problem.detail || problem.title)) || 'Something went wrong. Please try again.', action: 'none' };
  }
}

/** Attempts at one checkout before giving the decision back to the person. */
export const MAX_CHECKOUT_TRIES = 6;

/** Longest wait between two tries, whatever Retry-After says (seconds). */
export const MAX_RETRY_WAIT_SECONDS = 10;

/** Parses Retry-After (delta-seconds; an HTTP date counts as 1 s), capped, in milliseconds. */
export function retryAfterMillis(value, fallbackSeconds = 1) {
  const n = /^\s*\d+\s*$/.test(value ?? '') ? Number(value) : fallbackSeconds;
  return Math.min(Math.max(n, 0), MAX_RETRY_WAIT_SECONDS) * 1000;
}

/**
 * The checkout policy: given the outcome of one POST /orders attempt, what next.
 *   outcome: { network: true } for a failed fetch, else { status, type, retryAfter }.
 *   tries:   how many attempts have been made with this key so far.
 * Returns one of
 *   { next: 'done' }                       201: the order exists (maybe a replay)
 *   { next: 'retry', waitMs }              same Idempotency-Key again after waitMs
 *   { next: 'stop', keepKey: true }        no definitive answer: a later click reuses the key
 *   { next: 'stop', keepKey: false }       a definitive refusal: the next attempt gets a new key
 * Keeping the key whenever the outcome is unknown is what makes a double submission, a lost
 * response or an impatient second click land on the same order.
 */
export function checkoutStep(outcome, tries) {
  const canRetry = tries < MAX_CHECKOUT_TRIES;
  if (outcome.network) {
    return canRetry ? { next: 'retry', waitMs: Math.min(250 * 2 ** (tries - 1), 4000) } : { next: 'stop', keepKey: true };
  }
  const { status, type } = outcome;
  if (status === 201 || status === 200) return { next: 'done' };
  if (status === 409 && type === '/problems/request-in-flight') {
    return canRetry ? { next: 'retry', waitMs: retryAfterMillis(outcome.retryAfter) } : { next: 'stop', keepKey: true };
  }
  if (status === 429 || status === 503) {
    return canRetry ? { next: 'retry', waitMs: retryAfterMillis(outcome.retryAfter) } : { next: 'stop', keepKey: true };
  }
  if (status >= 500) return { next: 'stop', keepKey: true };
  // 4xx: cart-changed, out-of-stock, empty cart, bad token… definitive for this key.
  return { next: 'stop', keepKey: false };
}
