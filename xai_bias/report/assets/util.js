/* xai_bias report: shared helpers. Every piece of data is rendered as text (textContent /
   text nodes), never as HTML. */
'use strict';

const XB = {};

XB.data = JSON.parse(document.getElementById('report-data').textContent);
XB.cat = XB.data.catalog;

/* h('div', {class: 'x', text: 'y', onclick: fn}, child, ...): an element; strings become text nodes. */
XB.h = function (tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k === 'style') e.style.cssText = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'checked' || k === 'selected' || k === 'value') e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
};

/* A JSON number of the report: null = not measured, "inf"/"-inf" = infinite. */
XB.val = function (x) {
  if (x === null || x === undefined) return NaN;
  if (x === 'inf') return Infinity;
  if (x === '-inf') return -Infinity;
  return Number(x);
};

XB.fmt = function (x, digits) {
  const v = XB.val(x);
  if (Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  const d = digits === undefined ? 3 : digits;
  if (v !== 0 && (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3)) return v.toExponential(Math.max(d - 1, 1));
  return Number(v.toPrecision(d)).toString();
};

XB.fmtCI = function (v, ci, digits) {
  const s = XB.fmt(v, digits);
  if (!ci || (Number.isNaN(XB.val(ci[0])) && Number.isNaN(XB.val(ci[1])))) return s;
  return `${s} [${XB.fmt(ci[0], digits)}, ${XB.fmt(ci[1], digits)}]`;
};

XB.pct = (x, digits) => (Number.isNaN(XB.val(x)) ? '–' : (100 * XB.val(x)).toFixed(digits === undefined ? 1 : digits) + '%');

XB.layerName = (l) => (l < 0 ? 'emb' : String(l));

XB.PALETTE = ['#0072B2', '#D55E00', '#009E73', '#E69F00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];
XB.DASHES = [[], [6, 3], [2, 2], [9, 3, 2, 3]];

XB.methodLabel = function (method, measure) {
  const m = (XB.cat.methods[method] || {}).label || method;
  return measure && measure !== method ? `${m} (${measure})` : m;
};
XB.methodColor = (method, i) => (XB.cat.methods[method] || {}).color || XB.PALETTE[(i || 0) % XB.PALETTE.length];
XB.conditionLabel = (c) => (XB.cat.conditions[c] || {}).label || c;
XB.conditionColor = function (c, i) {
  return (XB.cat.conditions[c] || {}).color || XB.PALETTE[(i || 0) % XB.PALETTE.length];
};
XB.roleColor = (r) => XB.cat.roles[r] || '#999999';

/* The method that writes a dataset, and its label ("attention mass · /attention/mass"). */
XB.seriesLabel = function (s) {
  return s.method ? `${XB.methodLabel(s.method)} · /${s.name}` : `/${s.name}`;
};

XB.alpha = function (hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
};

/* Conditions in the catalogue's order, then the rest alphabetically. */
XB.orderConditions = function (names) {
  const known = Object.keys(XB.cat.conditions);
  const set = new Set(names);
  return known.filter((c) => set.has(c)).concat([...set].filter((c) => !known.includes(c)).sort());
};

XB.table = function (head, rows, opts) {
  const o = opts || {};
  const numeric = o.numeric || [];
  return XB.h('table', {class: o.class},
    XB.h('thead', {}, XB.h('tr', {}, head.map((c, i) => XB.h('th', {class: numeric.includes(i) ? 'num' : null, text: c})))),
    XB.h('tbody', {}, rows.map((r) => XB.h('tr', {}, r.map((c, i) => (c instanceof Node ? XB.h('td', {}, c)
      : XB.h('td', {class: numeric.includes(i) ? 'num' : null, text: c === null || c === undefined ? '–' : c})))))));
};

XB.note = (text, cls) => XB.h('div', {class: cls || 'note', text});

/* A <select> from [value, label] pairs. */
XB.select = function (options, value, onchange, props) {
  const s = XB.h('select', Object.assign({onchange: (e) => onchange(e.target.value)}, props || {}),
    options.map(([v, lab]) => XB.h('option', {value: v, text: lab})));
  s.value = value;
  return s;
};

/* Checkboxes: items [{key, label, color}], state: Set of checked keys. */
XB.checkboxes = function (title, items, state, onchange, name) {
  return XB.h('fieldset', {'data-group': name || title},
    XB.h('legend', {text: title}),
    items.map((it) => XB.h('label', {},
      XB.h('input', {type: 'checkbox', value: it.key, checked: state.has(it.key), onchange: (e) => {
        if (e.target.checked) state.add(it.key); else state.delete(it.key);
        onchange();
      }}),
      it.color ? XB.h('span', {class: 'swatch', style: `background:${it.color}`}) : null,
      it.label)));
};

/* Inferno colour map (9 stops), t in [0, 1] -> [r, g, b]. */
XB.INFERNO = [[0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85], [227, 89, 51],
  [249, 140, 10], [249, 201, 50], [252, 255, 164]];
XB.inferno = function (t) {
  const x = Math.min(Math.max(t, 0), 1) * (XB.INFERNO.length - 1);
  const i = Math.min(Math.floor(x), XB.INFERNO.length - 2);
  const f = x - i;
  const a = XB.INFERNO[i], b = XB.INFERNO[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k])));
};

XB.b64bytes = function (s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
};
