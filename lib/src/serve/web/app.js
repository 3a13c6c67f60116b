// The atlas serve page: plain JavaScript, no build step, no network beyond this server.
// State lives in `st`; every change calls schedule(), which (debounced) asks /api/run for the tokens
// and the selected attention matrix and /api/render for the figure, and drops stale answers.
'use strict';

const $ = (id) => document.getElementById(id);
const st = {
  info: null, source: 'text', model: '', store: '', doc: '', kind: 'heatmap', layer: 'mean', head: 'mean',
  level: 'token', focus: '', threshold: 0.05, hideSpecial: false, colormap: '', style: 'paper',
  contrastMode: 'layer', layerB: '', headB: '', modelB: '', textB: '', run: null, seq: 0, swapText: null,
};

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  const type = res.headers.get('Content-Type') || '';
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    if (type.startsWith('application/json')) msg = (await res.json()).error || msg;
    throw new Error(msg);
  }
  if (type.startsWith('application/json')) return res.json();
  return res.blob();
}

function setStatus(text) { $('status').textContent = text; }
function showError(err) {
  const box = $('error');
  if (!err) { box.hidden = true; box.textContent = ''; return; }
  box.hidden = false;
  box.textContent = String(err.message || err);
}

// ---- what the request names ---------------------------------------------------------------

function sourceA() {
  if (st.source === 'store') return { store: st.store, doc: st.doc };
  return { model: st.model, text: $('text').value };
}

function sourceB() {
  if (st.kind !== 'contrast') return null;
  const a = sourceA();
  switch (st.contrastMode) {
    case 'model': return st.source === 'store' ? null : { model: st.modelB || st.model, text: a.text };
    case 'text': return st.source === 'store' ? null : { model: st.model, text: $('text-b').value || a.text };
    case 'swap': return st.swapText ? { model: st.model, text: st.swapText } : null;
    default: return null;
  }
}

function figureRequest(format, dpi) {
  const req = Object.assign(sourceA(), {
    kind: st.kind, format, layer: st.layer, head: st.head, hide_special: st.hideSpecial, style: st.style,
  });
  if (st.kind === 'grid') { req.layer = st.layer === 'mean' ? '' : st.layer; req.head = ''; }
  if (st.kind === 'flowgraph') { req.layer = ''; req.head = ''; if (st.focus !== '') req.target = st.focus; }
  if (st.kind === 'profile') { req.layer = ''; req.head = ''; }
  if (st.kind === 'rollout') { req.layer = st.layer === 'mean' ? '-1' : st.layer; req.head = 'mean'; }
  if (st.kind === 'flow' || st.kind === 'flowgraph') req.threshold = st.threshold;
  if (st.kind === 'flow' && st.focus !== '') req.focus = st.focus;
  if (st.kind === 'contrast') {
    const b = sourceB();
    if (b) req.b = b;
    if (st.contrastMode === 'layer') { req.layer_b = st.layerB; req.head_b = st.headB; }
  }
  if (st.colormap) req.colormap = st.colormap;
  if (dpi) req.dpi = dpi;
  req.level = st.level;
  return req;
}

function sourceReady() {
  if (st.source === 'store') return st.store && st.doc;
  return st.model && $('text').value.trim() !== '';
}

// ---- updates --------------------------------------------------------------------------------

let timer = null;
function schedule(delay = 250) {
  clearTimeout(timer);
  timer = setTimeout(update, delay);
}

async function update() {
  if (!sourceReady()) return;
  const seq = ++st.seq;
  const fig = $('figure');
  fig.classList.add('busy');
  setStatus('computing…');
  const t0 = performance.now();
  try {
    const runReq = Object.assign(sourceA(), { layer: st.layer, head: st.head, level: st.level });
    if (st.kind === 'rollout') Object.assign(runReq, { kind: 'rollout', layer: st.layer === 'mean' ? '-1' : st.layer, head: 'mean' });
    const run = await api('/api/run', runReq);
    if (seq !== st.seq) return;
    st.run = run;
    if (st.kind !== 'rollout') fillSelectors(run);
    drawTokens(run);
    drawNext(run);
    $('cmd-extract').textContent = run.extract_command || '(stored document: no extraction needed)';
    const figReq = figureRequest('svg');
    figReq.inline = true;
    const rendered = await api('/api/render', figReq);
    if (seq !== st.seq) return;
    fig.innerHTML = rendered.svg.replace(/^<\?xml[^>]*>\s*/, '');
    fig.dataset.renders = String(Number(fig.dataset.renders) + 1);
    fig.dataset.kind = st.kind;
    fig.dataset.layer = st.layer;
    fig.dataset.head = st.head;
    $('cmd-visualize').textContent = rendered.command;
    $('cmd-process').textContent = (rendered.steps || []).join(' && ');
    $('cmd-process-row').hidden = !rendered.steps || rendered.steps.length === 0;
    showError(null);
    setStatus(`${run.tokens.length} tokens · ${(performance.now() - t0).toFixed(0)} ms`);
    loadHeads();
  } catch (err) {
    if (seq !== st.seq) return;
    showError(err);
    setStatus('error');
  } finally {
    if (seq === st.seq) fig.classList.remove('busy');
  }
}

function fillOptions(select, values, current, extra) {
  const want = [...extra, ...values.map(String)];
  const have = [...select.options].map((o) => o.value);
  if (want.join('|') !== have.join('|')) {
    select.innerHTML = '';
    for (const v of want) {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = v === '' ? 'same as A' : v;
      select.appendChild(o);
    }
  }
  select.value = want.includes(current) ? current : want[0];
}

function fillSelectors(run) {
  fillOptions($('layer'), run.layers, st.layer, ['mean']);
  fillOptions($('head'), run.heads, st.head, ['mean']);
  fillOptions($('layer-b'), run.layers, st.layerB, ['']);
  fillOptions($('head-b'), run.heads, st.headB, ['']);
  st.layer = $('layer').value;
  st.head = $('head').value;
}

function drawTokens(run) {
  const box = $('tokens');
  box.innerHTML = '';
  run.tokens.forEach((label, i) => {
    const s = document.createElement('span');
    s.textContent = label;
    s.dataset.index = String(i);
    if (run.special[i]) s.classList.add('special');
    if (String(i) === st.focus) s.classList.add('focus');
    s.title = `token ${i}: ${run.raw_tokens[i]}`;
    s.addEventListener('click', () => {
      st.focus = st.focus === String(i) ? '' : String(i);
      if (st.focus !== '' && st.kind !== 'flow' && st.kind !== 'flowgraph') setKind('flow');
      schedule(0);
    });
    s.addEventListener('mouseenter', (ev) => tokenHover(ev, i));
    s.addEventListener('mouseleave', hideTip);
    box.appendChild(s);
  });
}

function drawNext(run) {
  const body = $('next').querySelector('tbody');
  body.innerHTML = '';
  $('next-panel').hidden = !run.next || run.next.length === 0;
  for (const t of run.next || []) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td></td><td><span class="bar"></span></td>';
    tr.children[0].textContent = t.label;
    tr.children[1].textContent = t.probability.toFixed(3);
    tr.children[2].firstChild.style.width = `${Math.round(t.probability * 80)}px`;
    body.appendChild(tr);
  }
}

// ---- hover ----------------------------------------------------------------------------------

function showTip(ev, text) {
  const tip = $('tooltip');
  const wrap = $('figure-wrap').getBoundingClientRect();
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = `${ev.clientX - wrap.left + 12}px`;
  tip.style.top = `${ev.clientY - wrap.top + 12}px`;
}
function hideTip() { $('tooltip').hidden = true; }

function tokenHover(ev, i) {
  const run = st.run;
  if (!run) return;
  const row = run.attention[i].map((v, j) => [v, j]).sort((a, b) => b[0] - a[0]).slice(0, 3);
  const parts = row.map(([v, j]) => `${run.tokens[j]} ${v.toFixed(3)}`);
  showTip(ev, `${run.tokens[i]} → ${parts.join(', ')}`);
}

// The heatmap's cells, found once per figure. Up to 64 x 64 cells the renderer draws them as
// stroked paths, one per colour: each piece is a line through the middle of a row, as wide as a
// cell, so the cells are the group of paths of one stroke width whose stroked extent is n x n cells.
// Larger matrices are one image of n x n pixels, scaled into place by a <use> element.
function heatmapCells(svg) {
  if (svg._cells !== undefined) return svg._cells;
  svg._cells = null;
  const run = st.run;
  if (!run) return null;
  const visible = run.tokens.map((_, i) => i).filter((i) => !(st.hideSpecial && run.special[i]));
  const n = visible.length;
  const fits = (x0, y0, x1, y1, size) => {
    const tol = 0.02 * size + 0.01;
    return Math.abs(x1 - x0 - n * size) <= tol && Math.abs(y1 - y0 - n * size) <= tol;
  };
  const matrixOf = (e) => {
    const t = e.transform && e.transform.baseVal.consolidate();
    return t ? t.matrix : { a: 1, d: 1, e: 0, f: 0 };
  };
  // Paths by stroke width (in the figure's units), each group's union of stroked extents.
  const byWidth = new Map();
  for (const e of svg.querySelectorAll('path')) {
    const style = getComputedStyle(e);
    if (style.fill !== 'none' || style.stroke === 'none') continue;
    let b;
    try { b = e.getBBox(); } catch (_) { continue; }
    const m = matrixOf(e);
    const w = parseFloat(style.strokeWidth) * Math.abs(m.d);
    if (!(w > 0)) continue;
    const x0 = m.a * b.x + m.e, x1 = m.a * (b.x + b.width) + m.e;
    const y0 = m.d * b.y + m.f, y1 = m.d * (b.y + b.height) + m.f;
    const key = w.toFixed(2);
    const g = byWidth.get(key) || { size: w, x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    g.x0 = Math.min(g.x0, x0, x1); g.x1 = Math.max(g.x1, x0, x1);
    g.y0 = Math.min(g.y0, y0 - w / 2, y1 - w / 2); g.y1 = Math.max(g.y1, y0 + w / 2, y1 + w / 2);
    byWidth.set(key, g);
  }
  for (const g of byWidth.values())
    if (fits(g.x0, g.y0, g.x1, g.y1, g.size)) return (svg._cells = { x0: g.x0, y0: g.y0, size: g.size, n, visible });
  // An n x n image placed by a <use> that scales it (cairo's SVG for a raster).
  for (const u of svg.querySelectorAll('use')) {
    const ref = u.getAttribute('href') || u.getAttribute('xlink:href') ||
      u.getAttributeNS('http://www.w3.org/1999/xlink', 'href');
    const img = ref && ref.startsWith('#') ? svg.getElementById(ref.slice(1)) : null;
    if (!img || img.tagName !== 'image') continue;
    if (parseFloat(img.getAttribute('width')) !== n || parseFloat(img.getAttribute('height')) !== n) continue;
    const m = matrixOf(u);
    if (m.a > 0 && fits(m.e, m.f, m.e + n * m.a, m.f + n * m.d, m.a))
      return (svg._cells = { x0: m.e, y0: m.f, size: m.a, n, visible });
  }
  return null;
}

function figureHover(ev) {
  const svg = $('figure').querySelector('svg');
  const run = st.run;
  if (!svg || !run || (st.kind !== 'heatmap' && st.kind !== 'rollout')) { hideTip(); return; }
  const cells = heatmapCells(svg);
  if (!cells) { hideTip(); return; }
  const pt = svg.createSVGPoint();
  pt.x = ev.clientX; pt.y = ev.clientY;
  const p = pt.matrixTransform(svg.getScreenCTM().inverse());
  const col = Math.floor((p.x - cells.x0) / cells.size), row = Math.floor((p.y - cells.y0) / cells.size);
  if (col < 0 || row < 0 || col >= cells.n || row >= cells.n) { hideTip(); return; }
  const i = cells.visible[row], j = cells.visible[col];
  if (run.causal && j > i) { showTip(ev, `${run.tokens[i]} → ${run.tokens[j]}: masked`); return; }
  showTip(ev, `${run.tokens[i]} → ${run.tokens[j]}: ${run.attention[i][j].toFixed(4)}`);
}

// ---- heads table ------------------------------------------------------------------------------

let headsKey = '';
let headsData = null;
async function loadHeads() {
  const src = Object.assign(sourceA(), { level: st.level });
  const key = JSON.stringify(src);
  if (key !== headsKey) {
    headsKey = key;
    try { headsData = await api('/api/heads', src); } catch (err) { headsData = null; }
  }
  drawHeads();
}

function drawHeads() {
  const table = $('heads');
  table.innerHTML = '';
  if (!headsData) return;
  const metric = $('metric').value;
  const values = headsData[metric] || [];
  if (headsData.command) $('heads-command').textContent = headsData.command;
  // null: no query row counts for that head (as in the JSON of `atlas analyze heads`).
  const flat = values.flat().filter((v) => v !== null);
  const max = Math.max(...flat, 1e-9);
  const head = document.createElement('tr');
  head.innerHTML = '<th>L\\H</th>' + headsData.heads.map((h) => `<th>${h}</th>`).join('');
  table.appendChild(head);
  values.forEach((row, li) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = headsData.layers[li];
    tr.appendChild(th);
    row.forEach((v, hi) => {
      const td = document.createElement('td');
      td.textContent = v === null ? '–' : v.toFixed(2);
      const a = v === null ? 0 : v / max;
      td.style.background = `rgba(47, 111, 179, ${(0.1 + 0.8 * a).toFixed(2)})`;
      if (a > 0.6) td.style.color = '#fff';
      const L = String(headsData.layers[li]), H = String(headsData.heads[hi]);
      if (L === st.layer && H === st.head) td.classList.add('sel');
      td.title = `layer ${L} head ${H}: ${metric} ${v}`;
      td.addEventListener('click', () => {
        st.layer = L; st.head = H;
        $('layer').value = L; $('head').value = H;
        if (st.kind === 'grid' || st.kind === 'flowgraph' || st.kind === 'profile' || st.kind === 'rollout') setKind('heatmap');
        schedule(0);
      });
      tr.appendChild(td);
    });
    table.appendChild(tr);
  });
}

// ---- gender swap ------------------------------------------------------------------------------

async function runSwap() {
  const out = $('swap-out');
  out.textContent = 'running…';
  try {
    if (st.source === 'store') throw new Error('the gender swap runs a model: switch to Text');
    const r = await api('/api/swap', { model: st.model, text: $('text').value });
    st.swapText = r.text_b;
    out.innerHTML = '';
    const p = document.createElement('p');
    p.textContent = `B: ${r.text_b}`;
    out.appendChild(p);
    const w = document.createElement('p');
    w.textContent = `${r.replacements} swapped: ${r.words.join(', ')}`;
    out.appendChild(w);
    if (r.next.length) {
      const t = document.createElement('table');
      t.innerHTML = '<tr><th>next</th><th>A</th><th>B</th><th>Δ</th></tr>';
      for (const n of r.next.slice(0, 10)) {
        const tr = document.createElement('tr');
        tr.innerHTML = '<td></td><td></td><td></td><td></td>';
        tr.children[0].textContent = n.label;
        tr.children[0].style.textAlign = 'left';
        tr.children[1].textContent = n.p_a.toFixed(3);
        tr.children[2].textContent = n.p_b.toFixed(3);
        tr.children[3].textContent = (n.delta >= 0 ? '+' : '') + n.delta.toFixed(3);
        t.appendChild(tr);
      }
      out.appendChild(t);
    }
    if (r.attention_change.length) {
      const c = document.createElement('p');
      c.textContent = 'attention change per layer (mean |B−A|): ' +
        r.attention_change.map((x) => `L${x.layer} ${x.mean_abs.toFixed(4)}`).join(', ');
      out.appendChild(c);
    }
    st.contrastMode = 'swap';
    $('contrast-mode').value = 'swap';
    setKind('contrast');
    schedule(0);
  } catch (err) {
    out.textContent = String(err.message || err);
  }
}

// ---- export ---------------------------------------------------------------------------------

async function exportFigure(format, dpi) {
  try {
    let blob, name;
    if (format === 'npz') {
      const req = Object.assign(sourceA(), { level: st.level });
      if (st.kind === 'rollout') req.kind = 'rollout';
      blob = await api('/api/npz', req);
      name = st.kind === 'rollout' ? 'rollout.npz' : st.level === 'word' ? 'words.npz' : 'attention.npz';
    } else {
      blob = await api('/api/render', figureRequest(format, dpi));
      name = `${st.kind}.${format}`;
    }
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    setStatus(`exported ${name} (${blob.size} bytes)`);
  } catch (err) {
    showError(err);
  }
}

// ---- stores ----------------------------------------------------------------------------------

async function searchStore() {
  if (!st.store) return;
  const q = encodeURIComponent($('store-q').value);
  const list = $('store-docs');
  try {
    const r = await api(`/api/store/${encodeURIComponent(st.store)}/docs?q=${q}&limit=200`);
    list.innerHTML = '';
    for (const d of r.docs) {
      const li = document.createElement('li');
      const b = document.createElement('b');
      b.textContent = `${d.id} (${d.tokens} tokens${d.status === 'ok' ? '' : ', ' + d.status})`;
      li.appendChild(b);
      li.appendChild(document.createTextNode(d.text));
      if (d.id === st.doc) li.classList.add('active');
      if (d.status === 'ok') li.addEventListener('click', () => {
        st.doc = d.id;
        [...list.children].forEach((x) => x.classList.remove('active'));
        li.classList.add('active');
        schedule(0);
      });
      list.appendChild(li);
    }
  } catch (err) {
    showError(err);
  }
}

// ---- wiring ----------------------------------------------------------------------------------

function setKind(kind) {
  st.kind = kind;
  for (const b of $('kinds').children) b.classList.toggle('active', b.dataset.kind === kind);
  $('contrast-opts').hidden = kind !== 'contrast';
  $('row-threshold').hidden = !(kind === 'flow' || kind === 'flowgraph');
}

function setSource(source) {
  st.source = source;
  $('tab-text').classList.toggle('active', source === 'text');
  $('tab-store').classList.toggle('active', source === 'store');
  $('tab-text').setAttribute('aria-selected', String(source === 'text'));
  $('tab-store').setAttribute('aria-selected', String(source === 'store'));
  $('pane-text').hidden = source !== 'text';
  $('pane-store').hidden = source !== 'store';
  if (source === 'store') searchStore();
  schedule(0);
}

function fillModelSelect(select, models) {
  select.innerHTML = '';
  for (const m of models) {
    const o = document.createElement('option');
    o.value = m.name;
    o.textContent = m.num_layers ? `${m.name} (${m.model_type}, ${m.num_layers}×${m.num_heads})` : m.name;
    select.appendChild(o);
  }
}

async function init() {
  const info = await api('/api/models');
  st.info = info;
  $('version').textContent = `atlas ${info.version}`;
  fillModelSelect($('model'), info.models);
  fillModelSelect($('model-b'), info.models);
  st.model = info.models.length ? info.models[0].name : '';
  for (const c of info.colormaps) {
    const o = document.createElement('option');
    o.value = c; o.textContent = c;
    $('colormap').appendChild(o);
  }
  const storeSel = $('store');
  for (const s of info.stores) {
    const o = document.createElement('option');
    o.value = s; o.textContent = s;
    storeSel.appendChild(o);
  }
  st.store = info.stores.length ? info.stores[0] : '';
  $('tab-store').disabled = info.stores.length === 0;
  if (info.word_level) $('level').querySelector('option[value=word]').disabled = false;
  $('text').maxLength = info.limits.max_text_chars;

  $('text').addEventListener('input', () => { st.swapText = null; schedule(); });
  $('text-b').addEventListener('input', () => schedule());
  $('model').addEventListener('change', (e) => { st.model = e.target.value; st.swapText = null; schedule(0); });
  $('model-b').addEventListener('change', (e) => { st.modelB = e.target.value; schedule(0); });
  $('layer').addEventListener('change', (e) => { st.layer = e.target.value; schedule(0); });
  $('head').addEventListener('change', (e) => { st.head = e.target.value; schedule(0); });
  $('layer-b').addEventListener('change', (e) => { st.layerB = e.target.value; schedule(0); });
  $('head-b').addEventListener('change', (e) => { st.headB = e.target.value; schedule(0); });
  $('level').addEventListener('change', (e) => { st.level = e.target.value; schedule(0); });
  $('hide-special').addEventListener('change', (e) => { st.hideSpecial = e.target.checked; schedule(0); });
  $('colormap').addEventListener('change', (e) => { st.colormap = e.target.value; schedule(0); });
  $('style').addEventListener('change', (e) => { st.style = e.target.value; schedule(0); });
  $('threshold').addEventListener('input', (e) => {
    st.threshold = Number(e.target.value);
    $('threshold-value').textContent = st.threshold.toFixed(2);
    schedule();
  });
  $('contrast-mode').addEventListener('change', (e) => {
    st.contrastMode = e.target.value;
    $('contrast-layer').hidden = st.contrastMode !== 'layer';
    $('contrast-model').hidden = st.contrastMode !== 'model';
    $('contrast-text').hidden = st.contrastMode !== 'text';
    if (st.contrastMode === 'swap' && !st.swapText) { runSwap(); return; }
    schedule(0);
  });
  for (const b of $('kinds').children) b.addEventListener('click', () => { setKind(b.dataset.kind); schedule(0); });
  for (const b of document.querySelectorAll('[data-export]'))
    b.addEventListener('click', () => exportFigure(b.dataset.export, b.dataset.dpi ? Number(b.dataset.dpi) : undefined));
  $('metric').addEventListener('change', drawHeads);
  $('swap-run').addEventListener('click', runSwap);
  $('tab-text').addEventListener('click', () => setSource('text'));
  $('tab-store').addEventListener('click', () => setSource('store'));
  $('store').addEventListener('change', (e) => { st.store = e.target.value; st.doc = ''; searchStore(); });
  let searchTimer = null;
  $('store-q').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(searchStore, 250); });
  $('upload').addEventListener('change', (e) => {
    const file = e.target.files[0];
    if (!file) return;
    if (file.size > info.limits.max_body_bytes) { showError(new Error(`${file.name} is larger than the server accepts`)); return; }
    const reader = new FileReader();
    reader.onload = () => { $('text').value = String(reader.result).slice(0, info.limits.max_text_chars); st.swapText = null; schedule(0); };
    reader.readAsText(file);
  });
  $('figure').addEventListener('mousemove', figureHover);
  $('figure').addEventListener('mouseleave', hideTip);
  setKind('heatmap');
  schedule(0);
}

init().catch((err) => { showError(err); setStatus('cannot reach the server'); });
