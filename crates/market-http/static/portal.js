// "My purchases": the buyer portal. A buyer asks for a sign-in link by email; the link (its key in
// the URL's fragment, which browsers never send to a server) opens a portal session, kept in an
// HttpOnly cookie this script cannot read; the page then lists every purchase of that email with
// its token and usage. Plain DOM, no framework, no inline script (the CSP allows none).
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  // fetch + JSON; a non-2xx answer throws an Error carrying the envelope's message and the status.
  async function call(path, { method = 'GET', body } = {}) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      const error = new Error('Could not reach the shop. Check your connection and try again.');
      error.status = 0;
      throw error;
    }
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch { /* not JSON: handled below */ }
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) || `The shop answered with HTTP ${response.status}.`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  const say = (text) => { $('portal-status').textContent = text; };

  // Minor units in the currency's own precision (cents for USD, none for JPY).
  function money({ amount, currency }) {
    try {
      const format = new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() });
      return format.format(amount / 10 ** format.resolvedOptions().maximumFractionDigits);
    } catch {
      return `${amount} ${currency}`;
    }
  }

  function renderPurchase(purchase) {
    const token = purchase.token;
    const item = el('li', { class: 'portal-purchase', 'data-status': purchase.status });
    item.append(
      el('p', { class: 'summary' },
        `${purchase.tier.canonical} (${purchase.tier.seller}) — ${purchase.tier.name}${purchase.upgraded_to ? ` (upgraded to ${purchase.upgraded_to.name})` : ''} · ${money(purchase.price)} · `,
        el('span', { class: `badge badge-${purchase.status}` }, purchase.status)),
    );
    if (purchase.upgrade_of) {
      // An upgrade holds no token: it raised the limit of the purchase it names.
      item.append(el('p', { class: 'muted' }, `Upgrade of purchase ${purchase.upgrade_of}: its token allows the new tier's installs.`));
    } else if (token && token.value) {
      item.append(
        el('p', {}, el('code', { class: 'token' }, token.value)),
        el('p', { class: 'installs' }, `${token.current_installs} of ${token.max_installs} installs used`),
      );
    } else {
      item.append(el('p', { class: 'muted' }, 'No working token.'));
    }
    item.append(el('p', { class: 'muted small' }, `Purchase ${purchase.purchase_id}`));
    return item;
  }

  async function showPurchases() {
    const { purchases } = await call('/v1/portal/purchases');
    const list = $('portal-list');
    list.replaceChildren(...purchases.map(renderPurchase));
    if (purchases.length === 0) list.append(el('li', { class: 'muted' }, 'No purchases yet.'));
    $('portal-form').hidden = true;
    $('portal-signed-in').hidden = false;
    say(`${purchases.length} purchase${purchases.length === 1 ? '' : 's'}.`);
  }

  async function askForLink(event) {
    event.preventDefault();
    const email = $('portal-email').value.trim();
    if (!email) return;
    const button = $('portal-send');
    button.disabled = true;
    try {
      const { message } = await call('/v1/portal/links', { method: 'POST', body: { email } });
      say(message);
    } catch (error) {
      say(error.message);
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    await call('/v1/portal/session', { method: 'DELETE' }).catch(() => null);
    $('portal-list').replaceChildren();
    $('portal-signed-in').hidden = true;
    $('portal-form').hidden = false;
    say('Signed out.');
  }

  // A sign-in link in the address's fragment: redeemed once, then dropped from the address bar and
  // history (it works once anyway). Runs at load and when only the fragment changes (following a
  // link to this very page does not reload it).
  async function redeemFromHash() {
    const hash = window.location.hash;
    if (!hash.startsWith('#portal=')) return 'none';
    window.history.replaceState(null, '', window.location.pathname + window.location.search + '#portal');
    try {
      await call('/v1/portal/sessions', { method: 'POST', body: { link: decodeURIComponent(hash.slice('#portal='.length)) } });
    } catch (error) {
      say(error.message);
      $('portal').scrollIntoView();
      return 'failed';
    }
    return 'redeemed';
  }

  async function refresh() {
    const link = await redeemFromHash();
    if (link === 'failed') return;
    try {
      await showPurchases();
      if (link === 'redeemed') $('portal').scrollIntoView();
    } catch (error) {
      if (error.status !== 401) say(error.message);
    }
  }

  function start() {
    $('portal-form').addEventListener('submit', askForLink);
    $('portal-signout').addEventListener('click', signOut);
    window.addEventListener('hashchange', () => {
      if (window.location.hash.startsWith('#portal=')) refresh();
    });
    refresh();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
