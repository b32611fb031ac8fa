// The storefront demo page: lists the catalog, starts Stripe Checkout, and shows a purchase with
// its install token when the buyer comes back. Plain browser JavaScript, no build step.
//
// Every value from the server goes into the page as text (textContent / text nodes, never
// innerHTML), so nothing the API returns can run as markup.
'use strict';

(() => {
  // localStorage: { [purchase_id]: { key, label, at, checkout_url } }. The receipt key is the
  // buyer's only proof of ownership, so it stays in this browser and is sent only as a bearer.
  const PURCHASES_KEY = 'market.purchases';
  // sessionStorage: the purchase id while the buyer is away at the payment page.
  const LEAVING_KEY = 'market.checkout';
  // How long to keep asking while a paid purchase waits for its token.
  const POLL_FOR_MS = 120000;

  const $ = (id) => document.getElementById(id);

  // el('p', { class: 'x' }, 'text', child) → a new element. null/undefined/false attributes and
  // children are skipped; `dataset` sets data-* attributes.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === false || value == null) continue;
      if (name === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    node.append(...children.filter((c) => c != null && c !== false));
    return node;
  }

  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---------------------------------------------------------------- money and wording

  // Prices come in the currency's minor unit ({amount: 1900, currency: "usd"} is $19.00);
  // Intl knows how many minor digits each currency has (2 for USD, 0 for JPY).
  function formatPrice({ amount, currency }) {
    const code = String(currency).toUpperCase();
    try {
      const format = new Intl.NumberFormat(undefined, { style: 'currency', currency: code });
      const digits = format.resolvedOptions().maximumFractionDigits;
      return format.format(amount / 10 ** digits);
    } catch {
      return `${amount} ${code} (minor units)`;
    }
  }

  const installsAllowed = (n) => (n === 1 ? '1 install' : `Up to ${n} installs`);

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(message, code, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  // fetch + JSON; a non-2xx answer throws ApiError with the envelope's
  // {"error": {"code", "message"}}, a network failure throws one with status 0.
  async function api(path, { method = 'GET', body, key, idempotencyKey } = {}) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (key) headers.authorization = `Bearer ${key}`;
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError('Could not reach the shop. Check your connection and try again.', 'network_error', 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      // Not JSON (a proxy's error page, say): handled below.
    }
    if (!response.ok) {
      const error = data && data.error;
      throw new ApiError(
        (error && error.message) || `The shop answered with HTTP ${response.status}.`,
        (error && error.code) || 'http_error',
        response.status,
      );
    }
    if (data === null) throw new ApiError('The shop sent an answer this page cannot read.', 'bad_response', response.status);
    return data;
  }

  // A fresh Idempotency-Key per checkout attempt. crypto.randomUUID needs a secure context
  // (https or localhost); 128 random bits from getRandomValues do the same job elsewhere.
  function newIdempotencyKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ---------------------------------------------------------------- storage

  function storedPurchases() {
    try {
      return JSON.parse(localStorage.getItem(PURCHASES_KEY)) || {};
    } catch {
      return {};
    }
  }

  function rememberPurchase(id, entry) {
    try {
      const all = storedPurchases();
      all[id] = entry;
      localStorage.setItem(PURCHASES_KEY, JSON.stringify(all));
      return true;
    } catch {
      return false; // storage disabled or full
    }
  }

  function session(action, value) {
    try {
      if (action === 'set') sessionStorage.setItem(LEAVING_KEY, value);
      else if (action === 'take') {
        const v = sessionStorage.getItem(LEAVING_KEY);
        sessionStorage.removeItem(LEAVING_KEY);
        return v;
      }
    } catch {
      // No session storage: the "you left checkout" note is only a nicety.
    }
    return null;
  }

  // ---------------------------------------------------------------- messages

  // The API's messages are lower-case phrases ("tier not found"): make them sentences.
  const sentence = (text) => {
    const s = String(text).trim();
    return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
  };

  // Failures: the role="alert" region, with the server's own message.
  function showError(title, error) {
    const detail = error.status ? `Error code: ${error.code} (HTTP ${error.status})` : null;
    $('alert').replaceChildren(
      el('p', { class: 'alert-title' }, title),
      el('p', {}, sentence(error.message)),
      detail && el('p', { class: 'small' }, detail),
    );
  }

  const clearError = () => $('alert').replaceChildren();
  const setNotice = (text) => { $('notice').textContent = text; };

  // ---------------------------------------------------------------- catalog

  let catalog = [];

  function renderTier(listing, tier) {
    const price = formatPrice(tier.price);
    return el('li', { class: 'tier' },
      el('p', { class: 'tier-name' }, tier.name),
      el('p', { class: 'price' }, price),
      el('p', { class: 'tier-installs' }, installsAllowed(tier.max_installs)),
      el('button', {
        type: 'button',
        class: 'button buy',
        dataset: { tier: tier.id, canonical: listing.canonical },
        disabled: !tier.purchasable,
      },
      el('span', { class: 'label' }, tier.purchasable ? 'Buy' : 'Not on sale'),
      // The visible "Buy" is ambiguous among many buttons; screen readers get the whole offer.
      el('span', { class: 'visually-hidden' }, ` ${listing.title}, ${tier.name}, ${price}`)));
  }

  function renderListing(listing) {
    const titleId = `listing-${listing.canonical}`;
    return el('article', { class: 'card listing', 'aria-labelledby': titleId },
      el('h3', { id: titleId }, listing.title),
      el('p', { class: 'seller muted small' }, `by ${listing.seller ? listing.seller.name : ''}`),
      el('p', { class: 'description' }, listing.description),
      el('p', { class: 'meta' },
        el('a', { href: listing.snippet_url },
          'See the snippet on Xano',
          el('span', { class: 'visually-hidden' }, ` (${listing.title})`))),
      el('ul', { class: 'tiers', role: 'list', 'aria-label': `${listing.title} tiers` },
        ...listing.tiers.map((tier) => renderTier(listing, tier))));
  }

  async function loadCatalog() {
    const box = $('listings');
    box.setAttribute('aria-busy', 'true');
    try {
      ({ listings: catalog } = await api('/v1/listings'));
      box.replaceChildren(...(catalog.length
        ? catalog.map(renderListing)
        : [el('p', { class: 'muted' }, 'Nothing is for sale right now. Come back soon.')]));
    } catch (error) {
      const retry = el('button', { type: 'button', class: 'button secondary' }, 'Try again');
      retry.addEventListener('click', () => { clearError(); loadCatalog(); });
      box.replaceChildren(el('p', {}, 'The snippets could not be loaded. '), retry);
      showError('The catalog could not be loaded.', error);
    } finally {
      box.setAttribute('aria-busy', 'false');
    }
  }

  const titleOf = (canonical) =>
    (catalog.find((l) => l.canonical === canonical) || { title: canonical }).title;

  // ---------------------------------------------------------------- checkout

  // aria-disabled rather than disabled: the button keeps keyboard focus while the request runs.
  function setBusy(button, busy) {
    button.setAttribute('aria-disabled', String(busy));
    button.setAttribute('aria-busy', String(busy));
    button.querySelector('.label').textContent = busy ? 'Starting checkout…' : 'Buy';
  }

  async function buy(button) {
    const listing = catalog.find((l) => l.canonical === button.dataset.canonical);
    const tier = listing && listing.tiers.find((t) => t.id === button.dataset.tier);
    if (!tier) return;
    clearError();
    setNotice('');

    const email = $('email');
    const address = email.value.trim();
    if (address && !email.checkValidity()) {
      email.setAttribute('aria-invalid', 'true');
      showError('Check your e-mail address.', {
        message: 'Enter an address like name@example.com, or leave the field empty.',
      });
      email.focus();
      return;
    }
    email.removeAttribute('aria-invalid');

    setBusy(button, true);
    try {
      const body = { tier_id: tier.id };
      if (address) body.email = address;
      const created = await api('/v1/checkout', {
        method: 'POST',
        body,
        idempotencyKey: newIdempotencyKey(),
      });
      rememberPurchase(created.purchase_id, {
        key: created.receipt_key,
        label: `${listing.title} — ${tier.name} · ${formatPrice(tier.price)}`,
        at: new Date().toISOString(),
        checkout_url: created.checkout_url,
      });
      session('set', created.purchase_id);
      window.location.assign(created.checkout_url);
    } catch (error) {
      setBusy(button, false);
      if (error.code === 'tier_not_on_sale') {
        // Taken off sale since the page loaded: say so on the button too (it keeps focus).
        button.setAttribute('aria-disabled', 'true');
        button.querySelector('.label').textContent = 'Not on sale';
      }
      showError(`Checkout for ${listing.title} — ${tier.name} could not start.`, error);
      button.focus();
    }
  }

  // ---------------------------------------------------------------- one purchase

  // The short label of each status, as a badge.
  const BADGES = {
    pending: 'Not paid',
    paid: 'Paid',
    fulfilled: 'Ready',
    refunded: 'Refunded',
    disputed: 'Disputed',
    reinstated: 'Ready',
    dispute_lost: 'Disputed',
    revoked: 'Revoked',
    expired: 'Expired',
    failed: 'Failed',
  };

  // [badge, sentence] for a purchase's status.
  function describe(purchase, fromCheckout) {
    const badge = BADGES[purchase.status] || purchase.status;
    switch (purchase.status) {
      case 'pending':
        return fromCheckout
          ? ['Confirming', 'Confirming your payment with Stripe…']
          : [badge, 'This purchase has not been paid. Nothing was charged.'];
      case 'paid':
        return [badge, 'Payment received. Your install token is on its way: this page updates by itself.'];
      case 'fulfilled':
        return purchase.token && purchase.token.value
          ? [badge, 'Payment received. Your install token is ready.']
          : ['Closed', 'This purchase\'s install token no longer works.'];
      case 'refunded':
        return [badge, 'This purchase was refunded and its install token revoked.'];
      case 'disputed':
        return [badge, 'The payment is disputed: the install token is suspended while the bank decides.'];
      case 'reinstated':
        return purchase.token && purchase.token.value && purchase.token.state === 'assigned'
          ? [badge, 'The dispute was resolved in the seller\'s favour: here is your new install token.']
          : [badge, 'The dispute was resolved in the seller\'s favour: your new install token is on its way.'];
      case 'dispute_lost':
        return [badge, 'The dispute was decided for the cardholder, so the install token was revoked.'];
      case 'revoked':
        return [badge, 'Access was revoked: the install token no longer works.'];
      case 'expired':
        return [badge, 'Checkout expired before payment. Nothing was charged.'];
      case 'failed':
        return [badge, 'The payment did not go through. Nothing was charged.'];
      default:
        return [badge, ''];
    }
  }

  // Status text changes only when it differs, so screen readers are not told the same thing on
  // every poll.
  function setStatus(status, badge, sentence) {
    const box = $('purchase-status');
    const text = `${badge}: ${sentence}`;
    if (box.dataset.text === text) return;
    box.dataset.text = text;
    box.replaceChildren(
      el('span', { class: `badge badge-${status}` }, badge),
      ' ',
      el('span', {}, sentence));
  }

  // Install steps are sentences; URLs in them become links.
  function linkified(text) {
    const parts = text.split(/(https?:\/\/\S+?)(?=[.,)]?(?:\s|$))/);
    return parts.map((part, i) => (i % 2 ? el('a', { href: part }, part) : part));
  }

  function renderPurchase(purchase, fromCheckout) {
    const section = $('purchase');
    section.dataset.status = purchase.status;
    $('purchase-id').textContent = purchase.purchase_id;
    $('purchase-summary').textContent =
      `${titleOf(purchase.tier.canonical)} — ${purchase.tier.name} · ${formatPrice(purchase.price)}`;
    const [badge, sentence] = describe(purchase, fromCheckout);
    setStatus(purchase.status, badge, sentence);

    const token = purchase.token;
    const usable = Boolean(token && token.value);
    $('token-panel').hidden = !usable;
    $('install-help').hidden = !usable;
    if (!usable) return;
    $('token').textContent = token.value;
    $('installs').textContent = `${token.current_installs} of ${token.max_installs} installs used`;
    $('install-steps').replaceChildren(
      ...purchase.install.steps.map((step) => el('li', {}, ...linkified(step))));
    $('snippet-link').href = purchase.install.snippet_url;
  }

  // Paid but no token yet (or just back from checkout and not confirmed yet): ask again.
  const waiting = (purchase, fromCheckout) =>
    (['paid', 'reinstated'].includes(purchase.status) &&
      !(purchase.token && purchase.token.value && purchase.token.state === 'assigned')) ||
    (fromCheckout && purchase.status === 'pending');

  // Polls with backoff (1 s, 1.5 s, 2.25 s, … at most 10 s apart) for up to POLL_FOR_MS.
  async function pollPurchase(id, key, fromCheckout) {
    const deadline = Date.now() + POLL_FOR_MS;
    let delay = 1000;
    while (Date.now() < deadline) {
      await wait(delay);
      delay = Math.min(delay * 1.5, 10000);
      let purchase;
      try {
        purchase = await api(`/v1/purchases/${encodeURIComponent(id)}`, { key });
      } catch (error) {
        if (error.status === 0 || error.status >= 500) continue; // a blip: ask again
        throw error;
      }
      renderPurchase(purchase, fromCheckout);
      if (!waiting(purchase, fromCheckout)) return;
    }
    setStatus('paid', 'Still working',
      'This is taking longer than usual. Your payment is safe: reload this page in a few minutes to see your token.');
  }

  async function showPurchase(id, sessionId, catalogLoaded) {
    const section = $('purchase');
    section.hidden = false;
    $('purchase-id').textContent = id;
    const entry = storedPurchases()[id];
    if (entry) $('purchase-summary').textContent = entry.label;
    section.focus(); // screen readers start at "Your purchase"
    if (!entry) {
      setStatus('unknown', 'Not in this browser',
        'This page can show a purchase only in the browser it was bought with.');
      return;
    }
    setStatus('loading', 'Loading', 'Loading your purchase…');
    await catalogLoaded; // for the listing's title
    const fromCheckout = Boolean(sessionId);
    try {
      let purchase;
      if (fromCheckout) {
        // Confirms the payment with Stripe on the server (and fulfils it if the webhook has not).
        purchase = await api(`/v1/checkout/sessions/${encodeURIComponent(sessionId)}`, { key: entry.key });
        // Confirmed: a reload needs only the purchase.
        history.replaceState(null, '', `/?purchase=${encodeURIComponent(id)}`);
      } else {
        purchase = await api(`/v1/purchases/${encodeURIComponent(id)}`, { key: entry.key });
      }
      renderPurchase(purchase, fromCheckout);
      if (waiting(purchase, fromCheckout)) await pollPurchase(id, entry.key, fromCheckout);
    } catch (error) {
      setStatus('unknown', 'Unavailable', 'This purchase could not be shown.');
      showError('Your purchase could not be loaded.', error);
    }
    renderHistory(id);
  }

  async function copyToken() {
    const token = $('token');
    try {
      await navigator.clipboard.writeText(token.textContent);
      setNotice('Install token copied to the clipboard.');
    } catch {
      // No clipboard access (an insecure origin, say): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(token);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      setNotice('The token is selected: press Ctrl+C (⌘C on a Mac) to copy it.');
    }
  }

  // ---------------------------------------------------------------- purchases in this browser

  async function renderHistory(currentId) {
    const entries = Object.entries(storedPurchases())
      .sort(([, a], [, b]) => String(b.at).localeCompare(String(a.at)))
      .slice(0, 10);
    if (!entries.length) return;
    const items = await Promise.all(entries.map(async ([id, entry]) => {
      let status = null;
      try {
        status = (await api(`/v1/purchases/${encodeURIComponent(id)}`, { key: entry.key })).status;
      } catch {
        // Shown without a status.
      }
      const when = new Date(entry.at);
      const resume = status === 'pending' && entry.checkout_url
        ? el('a', { href: entry.checkout_url, class: 'small' }, 'Continue to payment')
        : null;
      return el('li', {},
        el('a', { href: `/?purchase=${encodeURIComponent(id)}`, 'aria-current': id === currentId ? 'page' : null },
          entry.label || id),
        ' ',
        status && el('span', { class: `badge badge-${status}` }, BADGES[status] || status),
        ' ',
        el('time', { datetime: entry.at, class: 'muted small' }, when.toLocaleString()),
        resume && ' ',
        resume);
    }));
    $('history-list').replaceChildren(...items);
    $('history').hidden = false;
  }

  // ---------------------------------------------------------------- start

  function start() {
    const params = new URLSearchParams(window.location.search);
    const purchaseId = params.get('purchase');
    const leftCheckout = session('take');

    const catalogLoaded = loadCatalog();
    $('listings').addEventListener('click', (event) => {
      const button = event.target.closest('button.buy');
      if (button && !button.disabled && button.getAttribute('aria-disabled') !== 'true') buy(button);
    });
    $('copy-token').addEventListener('click', copyToken);
    $('email').addEventListener('input', (event) => event.target.removeAttribute('aria-invalid'));

    if (purchaseId) {
      showPurchase(purchaseId, params.get('session_id'), catalogLoaded);
    } else {
      if (leftCheckout) setNotice('You left the payment page without paying. Nothing was charged.');
      renderHistory(null);
    }
  }

  // Back from the payment page, the browser may restore this page as it was left: re-enable the
  // Buy button that was busy, and say why nothing happened.
  window.addEventListener('pageshow', (event) => {
    if (!event.persisted) return;
    document.querySelectorAll('button.buy[aria-busy="true"]').forEach((b) => setBusy(b, false));
    if (session('take')) setNotice('You left the payment page without paying. Nothing was charged.');
  });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
