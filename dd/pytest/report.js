const report = JSON.parse(document.getElementById('dd-report').textContent);
const rows = report.results.map(e => Object.assign({arc: e.claim.split('.')[0]}, e));
const HEADLINE = ['auc', 'balanced_asym', 'asym', 'pos_rate', 'n_pos', 'delta'];
const GUARD = /(^surface\.|_null_|^ledger_|_ci_(low|high)$|^strict$|^n_(pos|neg)$|^generator_)/;
const filters = ['arc', 'base', 'operator', 'verdict', 'outcome'];
let sortKey = 'claim', sortDir = 1;

function fmt(v) {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : (Math.abs(v) < 100 ? v.toFixed(3) : v.toPrecision(4));
  if (Array.isArray(v)) return v.map(fmt).join(', ');
  if (typeof v === 'object') return Object.entries(v).map(([k, x]) => k + '=' + fmt(x)).join(', ');
  return String(v);
}
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  for (const k of kids) n.append(k instanceof Node ? k : document.createTextNode(k));
  return n;
}
function headline(e) {
  const shared = Object.keys(e.paper).filter(k => k in e.metrics);
  const ranked = HEADLINE.filter(k => shared.includes(k)).concat(shared.filter(k => !HEADLINE.includes(k)));
  const keys = (ranked.length ? ranked : HEADLINE.filter(k => k in e.metrics)).slice(0, 2);
  return keys.length ? keys : Object.keys(e.metrics).slice(0, 1);
}
function variant(e) {
  const i = e.nodeid.lastIndexOf('[');
  return i < 0 ? '' : ' ' + e.nodeid.slice(i);
}
function kvTable(obj) {
  const t = el('table');
  for (const [k, v] of Object.entries(obj)) t.append(el('tr', {}, el('td', {}, k), el('td', {class: 'num'}, fmt(v))));
  return t;
}
function details(e) {
  const box = el('div', {class: 'details'});
  const guards = {}, metrics = {};
  for (const [k, v] of Object.entries(e.metrics)) (GUARD.test(k) ? guards : metrics)[k] = v;
  box.append(el('h3', {}, 'Reasons'), el('ul', {}, ...(e.reasons.length ? e.reasons : ['(none)']).map(r => el('li', {}, r))));
  box.append(el('h3', {}, 'Measured'), Object.keys(metrics).length ? kvTable(metrics) : el('span', {class: 'muted'}, 'nothing measured'));
  if (Object.keys(guards).length) box.append(el('h3', {}, "Guards' numbers"), kvTable(guards));
  box.append(el('h3', {}, 'Paper'), Object.keys(e.paper).length ? kvTable(e.paper) : el('span', {class: 'muted'}, 'the paper quotes no number for this entry'));
  box.append(el('h3', {}, 'Gate'), Object.keys(e.gate).length ? kvTable(e.gate) : el('span', {class: 'muted'}, 'no gate'));
  box.append(el('h3', {}, 'Source and test'), kvTable({source: e.source, step: e.step, outcome: e.outcome, nodeid: e.nodeid}));
  return box;
}
function readHash() {
  const want = new URLSearchParams(location.hash.slice(1));
  for (const f of filters.concat(['text'])) if (want.has(f)) document.getElementById('f-' + f).value = want.get(f);
}
function writeHash() {
  const want = new URLSearchParams();
  for (const f of filters.concat(['text'])) { const v = document.getElementById('f-' + f).value; if (v) want.set(f, v); }
  history.replaceState(null, '', want.toString() ? '#' + want : location.pathname);
}
function visible() {
  const want = Object.fromEntries(filters.map(f => [f, document.getElementById('f-' + f).value]));
  const text = document.getElementById('f-text').value.toLowerCase();
  return rows.filter(e => filters.every(f => !want[f] || String(e[f]) === want[f]) &&
                          (!text || JSON.stringify(e).toLowerCase().includes(text)));
}
function render() {
  const body = document.getElementById('claims-body');
  body.replaceChildren();
  const shown = visible().sort((a, b) => sortDir * String(a[sortKey] ?? '').localeCompare(String(b[sortKey] ?? ''), undefined, {numeric: true}));
  for (const e of shown) {
    const keys = headline(e);
    // a skipped or crashed entry measured nothing: its reason says why
    const why = (e.outcome === 'skipped' || e.outcome === 'error') && e.reasons.length;
    const measured = why ? el('td', {class: 'why'}, e.reasons[0])
                         : el('td', {class: 'num'}, keys.map(k => k + ' ' + fmt(e.metrics[k])).join('  '));
    const tr = el('tr', {class: 'claim outcome-' + e.outcome, 'data-nodeid': e.nodeid},
      el('td', {class: 'tag'}, e.arc), el('td', {class: 'id'}, e.claim, el('span', {class: 'muted'}, variant(e))),
      el('td', {class: 'tag'}, e.base || '-'),
      el('td', {class: 'tag'}, e.operator || '-'), el('td', {class: 'tag'}, e.step || '-'), measured,
      el('td', {class: 'num tag'}, keys.some(k => k in e.paper) ? keys.map(k => k in e.paper ? fmt(e.paper[k]) : '-').join('  ') : '-'),
      el('td', {class: 'tag verdict-' + e.verdict}, e.verdict), el('td', {class: 'tag'}, e.outcome));
    const more = el('tr', {class: 'details', hidden: ''}, el('td', {colspan: 9}, details(e)));
    tr.addEventListener('click', () => { more.hidden = !more.hidden; });
    body.append(tr, more);
  }
  document.getElementById('shown').textContent = shown.length + ' of ' + rows.length + ' entries';
}
for (const f of filters) {
  const sel = document.getElementById('f-' + f);
  for (const v of [...new Set(rows.map(e => String(e[f])))].sort()) sel.append(el('option', {value: v}, v));
  sel.addEventListener('change', () => { writeHash(); render(); });
}
document.getElementById('f-text').addEventListener('input', () => { writeHash(); render(); });
for (const th of document.querySelectorAll('th[data-key]')) {
  th.addEventListener('click', () => {
    sortDir = sortKey === th.dataset.key ? -sortDir : 1;
    sortKey = th.dataset.key;
    document.querySelectorAll('th').forEach(h => h.classList.remove('sorted-asc', 'sorted-desc'));
    th.classList.add(sortDir > 0 ? 'sorted-asc' : 'sorted-desc');
    render();
  });
}
readHash();
render();
