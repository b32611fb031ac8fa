// The operator's dashboard: asks for an admin token, then reads the admin API with it and shows
// pools, credentials, jobs, failing webhook endpoints and sales. Plain browser JavaScript, no build
// step. The page itself holds no data: a wrong token shows the API's refusal and nothing else.
//
// Every value from the server goes into the page as text (textContent, text nodes, SVG text),
// never as markup.
'use strict';

(() => {
  // sessionStorage, not localStorage: the token is gone when the tab closes.
  const TOKEN_KEY = 'market.admin_token';

  const $ = (id) => document.getElementById(id);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // el('p', { class: 'x' }, 'text', child) → a new element; null/false attributes and children
  // are skipped.
  function make(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === false || value == null) continue;
      node.setAttribute(name, value === true ? '' : String(value));
    }
    node.append(...children.filter((c) => c != null && c !== false));
    return node;
  }
  const el = (tag, attrs = {}, ...children) => make(document.createElement(tag), attrs, children);
  const svg = (tag, attrs = {}, ...children) => make(document.createElementNS(SVG_NS, tag), attrs, children);

  // ---------------------------------------------------------------- words, money and time

  // Money is in the currency's minor unit (1900 usd is $19.00); Intl knows each currency's digits.
  function money(amount, currency) {
    const code = String(currency).toUpperCase();
    try {
      const format = new Intl.NumberFormat('en-US', { style: 'currency', currency: code });
      const digits = format.resolvedOptions().maximumFractionDigits;
      return format.format(amount / 10 ** digits);
    } catch {
      return `${amount} ${code} (minor units)`;
    }
  }

  const when = (iso) => (iso ? `${new Date(iso).toISOString().slice(0, 16).replace('T', ' ')} UTC` : '—');
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const badge = (text, tone) => el('span', { class: `badge badge-${tone}` }, text);

  // A table: `columns` are labels (a leading '#' right-aligns a numeric column); each row is an
  // array of cells, each a string, a node, or null (shown as a dash).
  function table(caption, columns, rows) {
    const numeric = columns.map((c) => c.startsWith('#'));
    const head = el('tr', {}, ...columns.map((c, i) => el('th', { scope: 'col', class: numeric[i] && 'num' }, c.replace(/^#/, ''))));
    const body = rows.map((row) => el('tr', {}, ...row.map((cell, i) => el('td', { class: numeric[i] && 'num' }, cell ?? '—'))));
    return el('div', { class: 'table-scroll' },
      el('table', {}, el('caption', { class: 'visually-hidden' }, caption), el('thead', {}, head), el('tbody', {}, ...body)));
  }

  const errorCell = (text) => (text ? el('span', { class: 'error-text' }, text) : null);

  // ---------------------------------------------------------------- the admin API

  class ApiError extends Error {
    constructor(message, code, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  // GET with the token; a non-2xx answer throws ApiError with the envelope's
  // {"error": {"code", "message"}}, a network failure one with status 0.
  async function api(path, token) {
    let response;
    try {
      response = await fetch(path, { headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
    } catch {
      throw new ApiError('Could not reach the service.', 'network_error', 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      // Not JSON: handled below.
    }
    if (!response.ok) {
      const error = data && data.error;
      throw new ApiError((error && error.message) || `HTTP ${response.status}`, (error && error.code) || 'http_error', response.status);
    }
    if (data === null) throw new ApiError('The service sent an answer this page cannot read.', 'bad_response', response.status);
    return data;
  }

  const describe = (e) => (e instanceof ApiError ? `${e.message} (${e.code}, HTTP ${e.status})` : `This section could not be drawn: ${e.message}`);

  // ---------------------------------------------------------------- sections

  async function loadPools(get) {
    const [levels, listings] = await Promise.all([get('/v1/admin/pools'), get('/v1/admin/listings')]);
    const canonical = new Map(listings.map((l) => [l.listing_id, l.canonical]));
    const tierName = new Map(listings.flatMap((l) => l.tiers.map((t) => [t.id, t.name])));
    const active = levels
      .filter((p) => p.active)
      .sort((a, b) => `${canonical.get(a.listing_id)} ${a.slug}`.localeCompare(`${canonical.get(b.listing_id)} ${b.slug}`));
    let short = 0;
    const rows = active.map((p) => {
      const [word, tone] = p.available === 0 && p.pool_target > 0 ? ['empty', 'bad'] : p.available < p.pool_low_water ? ['low', 'warn'] : ['stocked', 'ok'];
      if (tone !== 'ok') short += 1;
      const meter = el('meter', { min: 0, max: Math.max(p.pool_target, p.available, 1), low: p.pool_low_water, optimum: p.pool_target, value: p.available, 'aria-hidden': 'true' });
      return [
        canonical.get(p.listing_id) || p.listing_id,
        `${tierName.get(p.tier_id) || p.slug} (${p.slug} v${p.version})`,
        el('span', {}, meter, `${p.available} of ${p.pool_target}`),
        String(p.assigned),
        String(p.pool_low_water),
        badge(word, tone),
      ];
    });
    const nodes = [table('Pools per active tier', ['Listing', 'Tier', 'Unsold', '#Sold', '#Low water', 'State'], rows)];
    const inactive = levels.length - active.length;
    if (inactive > 0) nodes.push(el('p', { class: 'muted small' }, `${plural(inactive, 'inactive tier version', 'inactive tier versions')} not shown.`));
    if (active.length === 0) nodes.unshift(el('p', {}, 'No tier is on sale.'));
    return short ? { state: 'attention', verdict: `${short} low`, nodes } : { state: 'ok', verdict: 'all stocked', nodes };
  }

  const credentialTone = (state) => (state === 'healthy' ? 'ok' : 'bad');

  async function loadCredentials(get) {
    const [health, sellers] = await Promise.all([get('/v1/admin/health'), get('/v1/admin/sellers')]);
    let refused = health.state === 'healthy' ? 0 : 1;
    const rows = sellers.map((s) => {
      const status = badge(s.status, s.status === 'active' ? 'ok' : 'off');
      if (s.house) {
        return [el('span', {}, s.name, ' ', badge('house', 'off')), status, badge(health.state, credentialTone(health.state)),
          el('code', {}, health.credential), when(health.since), null, errorCell(health.last_error), 'paid directly'];
      }
      const stripe = s.stripe && s.stripe.charges_enabled ? badge('charges on', 'ok') : badge('charges off', 'warn');
      const x = s.xano;
      if (!x) return [s.name, status, badge('not set', 'off'), null, null, null, null, stripe];
      if (x.state !== 'healthy') refused += 1;
      return [s.name, status, badge(x.state, credentialTone(x.state)), el('code', {}, x.display_id),
        when(x.refused_at || x.set_at), String(x.parked_jobs), errorCell(x.last_error), stripe];
    });
    const nodes = [table('Each seller\'s Xano credential',
      ['Seller', 'Status', 'Xano credential', 'Token', 'Since', '#Parked jobs', 'Last error', 'Stripe'], rows)];
    if (health.drain) {
      nodes.push(el('p', { class: 'section-error' }, 'This instance\'s credential is refused while another works: /readyz drains it.'));
    }
    const others = health.credentials.filter((c) => c.credential !== health.credential);
    if (others.length > 0) {
      refused += others.filter((c) => c.in_use && c.state !== 'healthy').length;
      nodes.push(el('h3', {}, 'Other instances\' credentials'), table('Other instances\' credentials',
        ['Token', 'State', 'In use', 'Last seen', 'Last error'],
        others.map((c) => [el('code', {}, c.credential), badge(c.state, credentialTone(c.state)), c.in_use ? 'yes' : 'no', when(c.last_seen_at), errorCell(c.last_error)])));
    }
    return refused ? { state: 'attention', verdict: `${refused} refused`, nodes } : { state: 'ok', verdict: 'all healthy', nodes };
  }

  async function loadJobs(get) {
    const jobs = await get('/v1/admin/jobs');
    const totals = new Map();
    for (const c of jobs.counts) totals.set(c.state, (totals.get(c.state) || 0) + c.count);
    const counts = el('ul', { class: 'counts', 'aria-label': 'Jobs by state' },
      ...['queued', 'running', 'parked', 'dead', 'done'].map((s) => el('li', {}, `${s[0].toUpperCase()}${s.slice(1)} `, el('strong', {}, String(totals.get(s) || 0)))));
    const nodes = [counts];
    if (jobs.attention.length === 0) {
      nodes.push(el('p', {}, 'No job is dead, parked or retrying.'));
    } else {
      const tone = (s) => (s === 'dead' ? 'bad' : 'warn');
      nodes.push(table('Jobs needing attention', ['#Job', 'Kind', 'About', 'State', '#Attempt', 'Last error', 'Updated'],
        jobs.attention.map((j) => [String(j.job_id), j.kind, el('code', {}, j.subject), badge(j.state, tone(j.state)), String(j.attempt), errorCell(j.last_error), when(j.updated_at)])));
    }
    if (jobs.forbidden_listings.length > 0) {
      nodes.push(el('h3', {}, 'Snippets Xano forbids (their jobs are parked)'), table('Snippets Xano forbids',
        ['Listing', 'Since', '#Parked jobs', 'Last error'],
        jobs.forbidden_listings.map((f) => [f.canonical, when(f.since), String(f.parked_jobs), errorCell(f.last_error)])));
    }
    const waiting = jobs.attention.length + jobs.forbidden_listings.length;
    return waiting ? { state: 'attention', verdict: `${waiting} to look at`, nodes } : { state: 'ok', verdict: 'none', nodes };
  }

  async function loadWebhooks(get) {
    const [body, sellers] = await Promise.all([get('/v1/admin/webhooks'), get('/v1/admin/sellers')]);
    const names = new Map(sellers.map((s) => [s.seller_id, s.name]));
    const endpoints = body.endpoints || [];
    const failing = endpoints.filter((e) => e.state === 'disabled' || e.failing_since);
    const nodes = [];
    if (endpoints.length === 0) nodes.push(el('p', {}, 'No webhook endpoint is registered.'));
    else if (failing.length === 0) nodes.push(el('p', {}, `All ${plural(endpoints.length, 'endpoint delivers', 'endpoints deliver')}.`));
    else {
      nodes.push(el('p', {}, `${failing.length} of ${plural(endpoints.length, 'endpoint', 'endpoints')} failing.`));
      nodes.push(table('Failing webhook endpoints', ['URL', 'Seller', 'State', 'Failing since', '#Failures in a row', 'Last success', 'Why disabled'],
        failing.map((e) => [el('code', {}, e.url), e.seller_id ? names.get(e.seller_id) || e.seller_id : 'the platform',
          e.state === 'disabled' ? badge('disabled', 'bad') : badge('failing', 'warn'), when(e.failing_since),
          String(e.consecutive_failures), when(e.last_success_at), errorCell(e.disabled_reason)])));
    }
    return failing.length ? { state: 'attention', verdict: `${failing.length} failing`, nodes } : { state: 'ok', verdict: 'delivering', nodes };
  }

  // ---------------------------------------------------------------- sales

  // Every day from `from` (included) to `to` (excluded), as YYYY-MM-DD: the report's range.
  function daysOf(from, to) {
    const days = [];
    for (let t = Date.parse(`${from}T00:00:00Z`); t < Date.parse(`${to}T00:00:00Z`); t += 86400000) {
      days.push(new Date(t).toISOString().slice(0, 10));
    }
    return days;
  }

  // A tidy step for the y axis: 1, 2 or 5 times a power of ten, at least `raw`.
  function niceStep(raw) {
    const power = 10 ** Math.floor(Math.log10(raw));
    const scaled = raw / power;
    return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
  }

  const GROSS = '#0b57d0';
  const NET = '#1a7f37';
  const dayLabel = new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });

  // Gross and net per day as bars, one pair per day, with a money axis and a date axis.
  function chart(series, currency) {
    const W = 960;
    const H = 280;
    const pad = { left: 84, right: 12, top: 14, bottom: 40 };
    const plotW = W - pad.left - pad.right;
    const plotH = H - pad.top - pad.bottom;
    const step = niceStep(Math.max(1, ...series.map((d) => Math.max(d.gross, d.net))) / 4);
    const yMax = step * Math.max(1, Math.ceil(Math.max(...series.map((d) => d.gross), 1) / step));
    const y = (v) => pad.top + plotH - (Math.max(0, v) / yMax) * plotH;
    const slot = plotW / series.length;
    const bar = Math.max(2, Math.floor(slot * 0.36));
    const code = currency.toUpperCase();
    const titleId = `sales-chart-${currency}`;
    const first = series[0].day;
    const last = series[series.length - 1].day;
    const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': titleId, 'data-currency': currency },
      svg('title', { id: titleId }, `Gross and net sales per day in ${code}, ${first} to ${last}`));
    for (let v = 0; v <= yMax; v += step) {
      root.append(
        svg('line', { class: v === 0 ? 'axis' : 'grid', x1: pad.left, x2: W - pad.right, y1: y(v), y2: y(v) }),
        svg('text', { x: pad.left - 8, y: y(v) + 4, 'text-anchor': 'end' }, money(v, currency)),
      );
    }
    root.append(svg('line', { class: 'axis', x1: pad.left, x2: pad.left, y1: pad.top, y2: pad.top + plotH }));
    const every = Math.ceil(series.length / 10);
    series.forEach((d, i) => {
      const middle = pad.left + slot * i + slot / 2;
      const tip = `${d.day}: gross ${money(d.gross, currency)}, net ${money(d.net, currency)}, ${plural(d.sales, 'sale', 'sales')}`;
      for (const [value, x, fill, kind] of [[d.gross, middle - bar, GROSS, 'gross'], [d.net, middle, NET, 'net']]) {
        if (value <= 0) continue;
        root.append(svg('rect', { class: `bar bar-${kind}`, x, y: y(value), width: bar, height: y(0) - y(value), fill, 'shape-rendering': 'crispEdges' },
          svg('title', {}, tip)));
      }
      if (i % every === 0 || i === series.length - 1) {
        root.append(svg('text', { x: middle, y: H - pad.bottom + 18, 'text-anchor': 'middle' }, dayLabel.format(new Date(`${d.day}T00:00:00Z`))));
      }
    });
    root.append(svg('text', { x: pad.left + plotW / 2, y: H - 4, 'text-anchor': 'middle' }, 'Day paid (UTC)'));
    return root;
  }

  function totals(figures, currency) {
    const item = (label, value) => el('div', {}, el('dt', {}, label), el('dd', {}, value));
    return el('dl', { class: 'totals' },
      item('Sales', String(figures.sales)),
      item('Gross', money(figures.gross, currency)),
      item('Refunds', money(figures.refunds, currency)),
      item('Disputes', money(figures.disputes, currency)),
      item('Platform fees', money(figures.platform_fees, currency)),
      item('Net', money(figures.net, currency)));
  }

  // The report's default range: the last 30 days (UTC), today included.
  async function loadSales(get) {
    const report = await get('/v1/admin/reports/sales?group_by=day');
    const days = daysOf(report.from, report.to);
    const nodes = [];
    if (report.totals.length === 0) nodes.push(el('p', {}, `No sale from ${report.from} to ${days[days.length - 1] || report.to}.`));
    else {
      nodes.push(el('ul', { class: 'legend' },
        el('li', {}, el('span', { class: 'swatch swatch-gross' }), 'Gross: what buyers paid'),
        el('li', {}, el('span', { class: 'swatch swatch-net' }), 'Net: after refunds, disputes and platform fees')));
    }
    // Each currency on its own chart (amounts in different currencies never add up), every day of
    // the range on it, zero where nothing was sold.
    for (const total of [...report.totals].sort((a, b) => a.currency.localeCompare(b.currency))) {
      const byDay = new Map(report.rows.filter((r) => r.currency === total.currency).map((r) => [r.day, r]));
      const series = days.map((day) => ({ day, gross: 0, net: 0, sales: 0, ...byDay.get(day) }));
      nodes.push(el('h3', {}, `In ${total.currency.toUpperCase()}`), chart(series, total.currency), totals(total, total.currency));
    }
    const sales = report.totals.reduce((n, t) => n + t.sales, 0);
    return { state: 'ok', verdict: `${plural(sales, 'sale', 'sales')} in ${days.length} days`, nodes };
  }

  // ---------------------------------------------------------------- showing it

  const SECTIONS = { sales: loadSales, pools: loadPools, credentials: loadCredentials, jobs: loadJobs, webhooks: loadWebhooks };

  function render(id, outcome) {
    const section = $(id);
    const body = section.querySelector('.panel-body');
    const verdict = section.querySelector('.verdict');
    if (outcome.status === 'fulfilled') {
      const { state, verdict: words, nodes } = outcome.value;
      section.dataset.state = state;
      verdict.replaceChildren(badge(words, state === 'ok' ? 'ok' : 'bad'));
      body.replaceChildren(...nodes);
    } else {
      section.dataset.state = 'error';
      verdict.replaceChildren(badge('not loaded', 'bad'));
      body.replaceChildren(el('p', { class: 'section-error' }, describe(outcome.reason)));
    }
  }

  function clearAll() {
    $('dashboard').hidden = true;
    for (const id of Object.keys(SECTIONS)) {
      $(id).dataset.state = 'loading';
      $(id).querySelector('.panel-body').replaceChildren();
      $(id).querySelector('.verdict').replaceChildren();
    }
  }

  function signedOut(message) {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Storage refused: nothing was kept.
    }
    clearAll();
    $('toolbar').hidden = true;
    $('signin').hidden = false;
    if (message) $('alert').replaceChildren(el('p', { class: 'alert-title' }, 'The admin API refused the token'), el('p', {}, message));
  }

  async function show(token) {
    $('alert').replaceChildren();
    $('status').textContent = 'Loading…';
    // One answer per path per refresh, shared by the sections that need it.
    const answers = new Map();
    const get = (path) => {
      if (!answers.has(path)) answers.set(path, api(path, token));
      return answers.get(path);
    };
    const ids = Object.keys(SECTIONS);
    const outcomes = await Promise.allSettled(ids.map((id) => SECTIONS[id](get)));
    const refused = outcomes.find((o) => o.status === 'rejected' && (o.reason.status === 401 || o.reason.status === 403));
    if (refused) {
      signedOut(describe(refused.reason));
      $('token').focus();
      return;
    }
    $('signin').hidden = true;
    $('toolbar').hidden = false;
    $('dashboard').hidden = false;
    ids.forEach((id, i) => render(id, outcomes[i]));
    $('status').textContent = `Updated ${when(new Date().toISOString())}.`;
  }

  function stored() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('signin').addEventListener('submit', (event) => {
      event.preventDefault();
      const field = $('token');
      const token = field.value.trim();
      field.value = '';
      if (!token) {
        $('alert').replaceChildren(el('p', {}, 'Enter the admin token.'));
        field.focus();
        return;
      }
      try {
        sessionStorage.setItem(TOKEN_KEY, token);
      } catch {
        // Storage refused: the token lives in this function only, until a reload.
      }
      $('refresh').onclick = () => show(stored() || token);
      show(token);
    });
    $('signout').addEventListener('click', () => {
      signedOut();
      $('status').textContent = '';
      $('token').focus();
    });
    const token = stored();
    if (token) {
      $('refresh').onclick = () => show(stored() || token);
      show(token);
    }
  });
})();
