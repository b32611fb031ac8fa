// The API reference at /docs: /openapi.json rendered as plain HTML, with no code from anywhere but
// this service (the page's Content-Security-Policy allows nothing else). Text from the document is
// set with textContent, never innerHTML.
'use strict';

(function () {
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    for (const child of children) {
      if (child == null) continue;
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  };

  // A schema as a short type: `ListingBody`, `array of TierBody`, `string (uuid)`.
  function typeOf(schema) {
    if (!schema) return '';
    if (schema.$ref) return schema.$ref.split('/').pop();
    if (schema.oneOf || schema.anyOf) {
      return (schema.oneOf || schema.anyOf).map(typeOf).join(' | ');
    }
    if (schema.type === 'array') return `array of ${typeOf(schema.items)}`;
    const type = Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type || 'object');
    return schema.format ? `${type} (${schema.format})` : type;
  }

  function parameters(op) {
    if (!op.parameters || op.parameters.length === 0) return null;
    const rows = op.parameters.map((p) => el('tr', {},
      el('td', {}, el('code', {}, p.name)),
      el('td', {}, p.in),
      el('td', {}, typeOf(p.schema)),
      el('td', {}, p.required ? 'required' : 'optional'),
      el('td', { class: 'desc' }, p.description || '')));
    return el('table', {}, el('thead', {}, el('tr', {},
      el('th', {}, 'Parameter'), el('th', {}, 'In'), el('th', {}, 'Type'), el('th', {}, ''),
      el('th', {}, ''))), el('tbody', {}, ...rows));
  }

  function requestBody(op) {
    const content = op.requestBody && op.requestBody.content;
    if (!content) return null;
    const [type, media] = Object.entries(content)[0];
    return el('p', {}, 'Body: ', el('code', {}, typeOf(media.schema)), ` (${type})`);
  }

  function responses(op) {
    const rows = Object.entries(op.responses || {}).map(([status, response]) => {
      const content = response.content ? Object.values(response.content)[0] : null;
      return el('tr', {},
        el('td', {}, el('code', {}, status)),
        el('td', {}, content ? typeOf(content.schema) : ''),
        el('td', { class: 'desc' }, response.description || ''));
    });
    return el('table', {}, el('thead', {}, el('tr', {},
      el('th', {}, 'Status'), el('th', {}, 'Body'), el('th', {}, ''))), el('tbody', {}, ...rows));
  }

  function operation(method, path, op) {
    return el('section', { class: 'op', id: op.operationId || `${method}-${path}` },
      el('h3', {}, el('span', { class: 'method' }, method), path),
      op.summary ? el('p', {}, op.summary) : null,
      op.description ? el('p', { class: 'desc' }, op.description) : null,
      parameters(op), requestBody(op), responses(op));
  }

  function schema(name, s) {
    const props = Object.entries(s.properties || {}).map(([prop, p]) => el('tr', {},
      el('td', {}, el('code', {}, prop)),
      el('td', {}, typeOf(p)),
      el('td', {}, (s.required || []).includes(prop) ? 'required' : ''),
      el('td', { class: 'desc' }, p.description || '')));
    return el('section', { class: 'schema', id: `schema-${name}` },
      el('h3', {}, name),
      s.description ? el('p', { class: 'desc' }, s.description) : null,
      props.length ? el('table', {}, el('tbody', {}, ...props)) : el('p', {}, typeOf(s)));
  }

  async function render() {
    const status = document.getElementById('docs-status');
    const root = document.getElementById('docs');
    let doc;
    try {
      const response = await fetch('/openapi.json', { headers: { accept: 'application/json' } });
      doc = await response.json();
    } catch (e) {
      status.textContent = 'The API description could not be loaded.';
      return;
    }
    status.textContent = '';
    root.append(el('p', { class: 'desc' }, (doc.info && doc.info.description) || ''));
    const byTag = new Map();
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags && op.tags[0]) || 'other';
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(operation(method, path, op));
      }
    }
    for (const tag of doc.tags || []) {
      if (!byTag.has(tag.name)) continue;
      root.append(el('h2', {}, tag.name), el('p', { class: 'desc' }, tag.description || ''),
        ...byTag.get(tag.name));
      byTag.delete(tag.name);
    }
    for (const [tag, ops] of byTag) root.append(el('h2', {}, tag), ...ops);
    const schemas = Object.entries((doc.components && doc.components.schemas) || {});
    if (schemas.length) {
      root.append(el('h2', {}, 'Schemas'), ...schemas.map(([name, s]) => schema(name, s)));
    }
  }

  render();
})();
