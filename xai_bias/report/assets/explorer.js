/* xai_bias report: the per-sample explorer. Reads the embedded records of one trace (columns) and
   shows one sample under every condition: attention overlay per layer, prompt tokens by role or
   by a per-role measurement, option log-probs, every per-record measurement the trace holds, and
   the chain-of-thought response with its answer row. */
'use strict';

XB.PAGE = 25;

XB.Explorer = class {
  constructor(root) {
    this.root = root;
    this.charts = [];
    this.bytesCache = new Map();
    this.imgCache = new Map();
    this.setTrace(0);
  }

  // ---------------------------------------------------------------- data of the chosen trace
  setTrace(ti) {
    this.ti = ti;
    const ex = XB.data.traces[ti].explorer;
    this.ex = ex;
    const rec = ex.records;
    this.R = rec.index.length;
    this.sampleIds = ex.samples.id;
    const at = new Map(this.sampleIds.map((s, i) => [s, i]));
    this.by = this.sampleIds.map(() => ({}));  // [sample][mode][condition] -> record
    for (let r = 0; r < this.R; r++) {
      const slot = this.by[at.get(rec.sample[r])];
      (slot[rec.mode[r]] = slot[rec.mode[r]] || {})[rec.condition[r]] = r;
    }
    this.modes = [...new Set(rec.mode)];
    this.conditions = XB.orderConditions(rec.condition);
    this.L = ex.n_layers;
    this.mapSeries = ex.series.find((s) => s.kind === 'map');
    this.roleSeries = ex.series.filter((s) => s.kind === 'roles');
    this.answerRow = ex.series.find((s) => s.name === 'generation/answer_row');
    const cond = this.conditions.includes('complete') ? 'complete' : this.conditions[0];
    this.f = {mode: this.modes.includes('direct') ? 'direct' : this.modes[0], cond, correct: 'any', agree: 'any',
      facets: {}, search: '', sort: 'id'};
    this.page = 0;
    this.si = null;
    this.showCond = cond;
    this.layer = Math.max(this.L - 1, 0);
    this.tokenMode = 'role';
    this.lensLetter = null;
    this.showTiles = true;
  }

  rec(si, cond) {
    const slot = this.by[si][this.f.mode] || {};
    return cond in slot ? slot[cond] : null;
  }

  condsOf(si) {
    const slot = this.by[si][this.f.mode] || {};
    return this.conditions.filter((c) => c in slot);
  }

  // ---------------------------------------------------------------- filtering and sorting
  matches() {
    const f = this.f, rec = this.ex.records, meta = this.ex.samples.meta;
    const out = [];
    for (let si = 0; si < this.sampleIds.length; si++) {
      const r = this.rec(si, f.cond);
      if (r === null) continue;
      if (f.correct !== 'any' && rec.correct[r] !== (f.correct === 'yes')) continue;
      if (f.agree !== 'any') {
        const preds = this.condsOf(si).map((c) => rec.prediction[this.rec(si, c)]);
        const same = preds.length > 1 && preds[0] !== '' && preds.every((p) => p === preds[0]);
        if (same !== (f.agree === 'all')) continue;
      }
      if (Object.entries(f.facets).some(([k, v]) => v !== '' && String(meta[si][k]) !== v)) continue;
      if (f.search && !this.sampleIds[si].toLowerCase().includes(f.search.toLowerCase())) continue;
      out.push(si);
    }
    if (f.sort !== 'id') {
      const [key, dir] = f.sort.split('@');
      const sc = rec.scores[key];
      const v = (si) => XB.val(sc[this.rec(si, f.cond)]);
      out.sort((a, b) => {
        const x = v(a), y = v(b);
        if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : 1;
        if (Number.isNaN(y)) return -1;
        return dir === 'asc' ? x - y : y - x;
      });
    }
    return out;
  }

  // ---------------------------------------------------------------- layout
  render() {
    const ex = this.ex;
    this.root.replaceChildren();
    const traces = XB.data.traces;
    const top = XB.h('div', {class: 'controls', id: 'explorer-controls'},
      traces.length > 1 ? XB.h('label', {}, 'trace ', XB.select(traces.map((t, i) => [String(i), t.label]), String(this.ti),
        (v) => { this.setTrace(Number(v)); this.render(); }, {id: 'trace-select'})) : null,
      this.modes.length > 1 ? XB.h('label', {}, 'mode ', XB.select(this.modes.map((m) => [m, m]), this.f.mode,
        (v) => { this.f.mode = v; this.refresh(); })) : null,
      XB.h('label', {}, 'condition ', XB.select(this.conditions.map((c) => [c, XB.conditionLabel(c)]), this.f.cond,
        (v) => { this.f.cond = v; this.refresh(); }, {id: 'filter-condition'})),
      XB.h('label', {}, 'answer is ', XB.select([['any', 'right or wrong'], ['yes', 'correct'], ['no', 'wrong']], this.f.correct,
        (v) => { this.f.correct = v; this.refresh(); }, {id: 'filter-correct'})),
      XB.h('label', {}, 'across conditions ', XB.select([['any', 'any'], ['all', 'same answer in all'], ['differ', 'answers differ']],
        this.f.agree, (v) => { this.f.agree = v; this.refresh(); }, {id: 'filter-agree'})),
      ex.samples.facets.map((k) => {
        const values = [...new Set(ex.samples.meta.map((m) => String(m[k])))].sort();
        return XB.h('label', {}, `${k} `, XB.select([['', 'any']].concat(values.map((v) => [v, v])), this.f.facets[k] || '',
          (v) => { this.f.facets[k] = v; this.refresh(); }, {'data-facet': k}));
      }),
      XB.h('label', {}, 'sort ', XB.select([['id', 'sample id']].concat(ex.measures.flatMap((m) => [
        [`${m.key}@desc`, `${XB.methodLabel(m.method, m.measure)}: image ${m.kind === 'share' ? 'share' : 'effect'} ↓`],
        [`${m.key}@asc`, `${XB.methodLabel(m.method, m.measure)}: image ${m.kind === 'share' ? 'share' : 'effect'} ↑`]])),
      this.f.sort, (v) => { this.f.sort = v; this.refresh(); }, {id: 'sort'})),
      XB.h('label', {}, 'id ', XB.h('input', {type: 'search', size: 14, id: 'search', value: this.f.search,
        oninput: (e) => { this.f.search = e.target.value; this.refresh(); }})));
    this.listBox = XB.h('div', {id: 'explorer-list'});
    this.detailBox = XB.h('div', {class: 'detail', id: 'explorer-detail'});
    const head = [];
    if (ex.n_samples_shown < ex.n_samples) head.push(XB.note(ex.notes[0]));
    this.root.append(...head, top, XB.h('div', {class: 'explorer'}, this.listBox, this.detailBox));
    this.refresh();
  }

  refresh() {
    this.page = 0;
    this.renderList();
    const list = this.matches();
    if (this.si === null || !list.includes(this.si)) this.select(list.length ? list[0] : null);
    else this.renderDetail();
  }

  renderList() {
    const list = this.matches();
    this.current = list;
    const pages = Math.max(1, Math.ceil(list.length / XB.PAGE));
    this.page = Math.min(this.page, pages - 1);
    const rows = list.slice(this.page * XB.PAGE, (this.page + 1) * XB.PAGE);
    const rec = this.ex.records, shown = this.ex.samples.facets.slice(0, 2);
    const sortKey = this.f.sort === 'id' ? null : this.f.sort.split('@')[0];
    const tbody = XB.h('tbody', {}, rows.map((si) => {
      const r = this.rec(si, this.f.cond);
      const preds = this.condsOf(si).map((c) => {
        const k = this.rec(si, c);
        const p = rec.prediction[k];
        return XB.h('span', {class: 'pred ' + (p === '' ? 'none' : rec.correct[k] ? 'ok' : 'no'),
          title: `${XB.conditionLabel(c)}: ${p || 'unparsed'} (gold ${rec.answer[k] || '?'})`, text: p || '∅'});
      });
      const score = sortKey ? XB.val(rec.scores[sortKey][r]) : NaN;
      return XB.h('tr', {'data-sample': this.sampleIds[si], class: si === this.si ? 'selected' : null, onclick: () => this.select(si)},
        XB.h('td', {class: 'wrap', text: this.sampleIds[si]}),
        XB.h('td', {class: 'muted', text: shown.map((k) => this.ex.samples.meta[si][k]).join(' · ')}),
        XB.h('td', {}, preds),
        sortKey ? XB.h('td', {class: 'num'}, Number.isFinite(score) && score >= 0 && score <= 1
          ? XB.h('span', {class: 'bar', style: `width:${Math.round(50 * score)}px`}) : null, XB.fmt(score, 3)) : null);
    }));
    const head = ['sample', shown.join(' · '), 'answers per condition'];
    if (sortKey) head.push('image');
    this.listBox.replaceChildren(
      XB.h('div', {class: 'pager'},
        XB.h('button', {type: 'button', disabled: this.page === 0, onclick: () => { this.page--; this.renderList(); }, text: '‹ prev'}),
        XB.h('span', {id: 'match-count', text: `${list.length} sample(s) · page ${this.page + 1} of ${pages}`}),
        XB.h('button', {type: 'button', disabled: this.page >= pages - 1, onclick: () => { this.page++; this.renderList(); }, text: 'next ›'})),
      XB.h('table', {class: 'samples-table'}, XB.h('thead', {}, XB.h('tr', {}, head.map((c) => XB.h('th', {text: c})))), tbody));
  }

  select(si) {
    this.si = si;
    if (si !== null && !this.condsOf(si).includes(this.showCond)) this.showCond = this.condsOf(si)[0];
    this.listBox.querySelectorAll('tbody tr').forEach((tr) => tr.classList.toggle('selected', tr.dataset.sample === (si === null ? null : this.sampleIds[si])));
    this.renderDetail();
  }

  // ---------------------------------------------------------------- one sample
  renderDetail() {
    this.charts.forEach((c) => c.destroy());
    this.charts = [];
    const box = this.detailBox;
    box.replaceChildren();
    const si = this.si;
    if (si === null) {
      box.append(XB.note('No sample matches the filters.'));
      return;
    }
    const rec = this.ex.records;
    const conds = this.condsOf(si);
    const r0 = this.rec(si, conds[0]);
    const meta = this.ex.samples.meta[si];
    box.append(XB.h('h2', {id: 'sample-title', text: `Sample ${this.sampleIds[si]} · gold answer ${rec.answer[r0] || 'unknown'}`}),
      XB.h('p', {class: 'muted wrap'}, Object.entries(meta).map(([k, v]) => `${k}: ${v}`).join(' · ')),
      XB.table(['condition', 'prediction', 'correct', 'status'], conds.map((c) => {
        const r = this.rec(si, c);
        return [XB.conditionLabel(c), rec.prediction[r] || 'unparsed', rec.correct[r] ? 'yes' : 'no', rec.status[r]];
      })));
    const controls = XB.h('div', {class: 'controls'},
      XB.h('fieldset', {id: 'show-condition'}, XB.h('legend', {text: 'show condition'}), conds.map((c) => XB.h('label', {},
        XB.h('input', {type: 'radio', name: 'show-cond', value: c, checked: c === this.showCond,
          onchange: () => { this.showCond = c; this.renderDetail(); }}),
        XB.h('span', {class: 'swatch', style: `background:${XB.conditionColor(c, this.conditions.indexOf(c))}`}), XB.conditionLabel(c)))),
      this.L > 0 ? XB.h('label', {}, 'layer ', XB.h('input', {type: 'range', id: 'layer-slider', min: 0, max: this.L - 1, step: 1,
        value: String(this.layer), oninput: (e) => this.setLayer(Number(e.target.value))}),
      XB.h('span', {id: 'layer-value', text: ` ${this.layer} of 0–${this.L - 1}`})) : null);
    box.append(controls);
    const r = this.rec(si, this.showCond);
    this.overlayCard = XB.h('div', {class: 'card', id: 'overlay-card'});
    this.tokenCard = XB.h('div', {class: 'card', id: 'token-card'});
    box.append(XB.h('div', {class: 'row'}, this.overlayCard, this.tokenCard));
    this.drawOverlay(r);
    this.renderTokens(r);
    const row2 = XB.h('div', {class: 'row'});
    box.append(row2);
    this.logprobCard(row2, si, conds);
    this.sampleLayersCard(row2, si, conds);
    for (const s of this.ex.series) {
      if (s.kind === 'groups' || s.kind === 'layers' || s.kind === 'letters') this.seriesCard(row2, s, si, conds);
    }
    this.scalarsCard(box, si, conds);
    this.responseCard(box, r);
  }

  setLayer(l) {
    this.layer = l;
    const lab = document.getElementById('layer-value');
    if (lab) lab.textContent = ` ${l} of 0–${this.L - 1}`;
    const r = this.rec(this.si, this.showCond);
    this.drawOverlay(r);
    this.colourTokens(r);
  }

  // ---------------------------------------------------------------- attention overlay
  mapBytes(r, m) {
    if (!this.bytesCache.has(r)) this.bytesCache.set(r, XB.b64bytes(m.q));
    return this.bytesCache.get(r);
  }

  imageEl(idx) {
    if (!this.imgCache.has(idx)) {
      const img = new Image();
      img.src = XB.data.images[idx];
      this.imgCache.set(idx, img);
    }
    return this.imgCache.get(idx);
  }

  drawOverlay(r) {
    const card = this.overlayCard;
    card.replaceChildren(XB.h('h3', {text: 'Answer-row attention on the image'}),
      XB.h('label', {}, XB.h('input', {type: 'checkbox', id: 'show-tiles', checked: this.showTiles,
        onchange: (e) => { this.showTiles = e.target.checked; this.drawOverlay(r); }}), ' show the attention tiles'));
    const s = this.mapSeries;
    const m = s ? this.ex.records.series[s.name][r] : null;
    if (!m) {
      card.append(XB.note(s ? 'This record has no attention map (no image under this condition, or none was captured).'
        : 'The trace holds no attention maps (run attention with --save-maps).'));
      return;
    }
    const l = Math.min(this.layer, m.max.length - 1);
    const q = this.mapBytes(r, m);
    const imgs = this.ex.records.images[r] || [];
    const wrap = XB.h('div', {class: 'overlay-wrap'});
    let off = 0;
    m.grid.forEach(([rows, cols], k) => {
      const idx = imgs[k] === undefined ? null : imgs[k];
      const W = 300;
      const canvas = XB.h('canvas', {class: 'overlay', 'data-image': k});
      const fig = XB.h('figure', {}, canvas, XB.h('figcaption', {text: `image ${k + 1}: ${rows}×${cols} vision tokens` +
        (idx === null ? ' (image file not embedded: tiles only)' : '')}));
      wrap.append(fig);
      const start = off;
      off += rows * cols;
      const draw = () => {
        const img = idx === null ? null : this.imageEl(idx);
        const aspect = img && img.naturalWidth ? img.naturalHeight / img.naturalWidth : rows / cols;
        canvas.width = W;
        canvas.height = Math.max(20, Math.round(W * aspect));
        const ctx = canvas.getContext('2d');
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        const under = img && img.naturalWidth;
        if (under) ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
        const tw = canvas.width / cols, th = canvas.height / rows;
        for (let t = 0; this.showTiles && t < rows * cols && start + t < m.n; t++) {
          const v = q[l * m.n + start + t] / 255;
          const [cr, cg, cb] = XB.inferno(v);
          // over the image, weak tiles are nearly transparent so the picture shows through
          ctx.fillStyle = `rgba(${cr},${cg},${cb},${under ? 0.1 + 0.7 * v : 1})`;
          ctx.fillRect((t % cols) * tw, Math.floor(t / cols) * th, Math.ceil(tw), Math.ceil(th));
        }
        canvas.dataset.layer = String(l);
        canvas.dataset.drawn = img && !img.naturalWidth ? 'pending' : 'yes';
      };
      draw();
      if (idx !== null && !this.imageEl(idx).complete) this.imageEl(idx).addEventListener('load', draw, {once: true});
    });
    card.append(wrap,
      XB.h('div', {class: 'caption'}, XB.h('span', {class: 'colorbar', style: `background:linear-gradient(to right,${[0, .25, .5, .75, 1].map((t) => `rgb(${XB.inferno(t).join(',')})`).join(',')})`}),
        ` 0 → the layer's largest value (over the image, opacity grows with the value). Layer ${l}: the answer row puts ${XB.pct(m.sum[l])} of its attention (head mean) on the image tokens; `,
        `each tile is one vision token in place (rows × cols from /attention/map_grid). The picture underneath is the sample's own image from the record's metadata; `,
        `under ${XB.conditionLabel(this.showCond)} the model was shown what that condition shows.`));
  }

  // ---------------------------------------------------------------- prompt tokens
  tokenEntries(r) {
    const rec = this.ex.records, roles = this.ex.roles, vocab = this.ex.vocab;
    const ids = rec.tokens[r], rl = rec.roles[r];
    const out = [];
    let pos = 0;
    for (let k = 0; k < ids.length; k++) {
      const role = roles[Number(rl[k])] || '?';
      const n = ids[k] < 0 ? -ids[k] : 1;
      const text = ids[k] < 0 ? `▦ image × ${n}` : (vocab ? (vocab[String(ids[k])] ?? `[${ids[k]}]`) : `[${ids[k]}]`);
      out.push({role, roleIndex: Number(rl[k]), start: pos, n, text, image: ids[k] < 0});
      pos += n;
    }
    return {entries: out, total: pos};
  }

  answerPos(r, total) {
    const rec = this.ex.records;
    if (this.answerRow) {
      const v = rec.series[this.answerRow.name][r];
      if (v !== null && v !== undefined && rec.mode[r] !== 'direct') return Number(v);
    }
    return rec.mode[r] === 'direct' ? total - 1 : null;
  }

  renderTokens(r) {
    const card = this.tokenCard;
    const modes = [['role', 'role']].concat(this.roleSeries.map((s) => [s.name, XB.seriesLabel(s)]));
    if (!modes.some(([v]) => v === this.tokenMode)) this.tokenMode = 'role';
    card.replaceChildren(XB.h('h3', {text: 'Prompt tokens'}),
      XB.h('label', {}, 'colour by ', XB.select(modes, this.tokenMode, (v) => { this.tokenMode = v; this.colourTokens(r); }, {id: 'token-mode'})));
    const {entries, total} = this.tokenEntries(r);
    this.tokEntries = entries;
    const ans = this.answerPos(r, total);
    this.tokSpans = entries.map((e) => {
      const isAns = ans !== null && ans >= e.start && ans < e.start + e.n;
      const emitted = ans !== null && this.ex.records.mode[r] !== 'direct' && ans + 1 >= e.start && ans + 1 < e.start + e.n;
      return XB.h('span', {class: 'tok' + (e.image ? ' img' : '') + (isAns ? ' answer-row' : '') + (emitted ? ' emitted' : ''),
        'data-role': e.role, text: e.text});
    });
    const prompt = this.tokSpans.filter((_, k) => entries[k].role !== 'generated');
    this.legendBox = XB.h('div', {class: 'caption'});
    card.append(XB.h('div', {class: 'tokens', id: 'tokens'}, prompt), this.legendBox);
    if (!this.ex.vocab) card.append(XB.note('Token texts are not embedded (no tokenizer found): token ids are shown.'));
    this.colourTokens(r);
  }

  colourTokens(r) {
    if (!this.tokSpans) return;
    const entries = this.tokEntries, roles = this.ex.roles;
    const counts = roles.map(() => 0);
    entries.forEach((e) => { counts[e.roleIndex] += e.n; });
    const legend = this.legendBox;
    if (this.tokenMode === 'role') {
      this.tokSpans.forEach((sp, k) => { sp.style.background = XB.alpha(XB.roleColor(entries[k].role), 0.3); sp.title = entries[k].role; });
      legend.replaceChildren(...roles.filter((ro, i) => counts[i]).map((ro) => XB.h('span', {}, XB.h('span', {class: 'swatch', style: `background:${XB.alpha(XB.roleColor(ro), 0.6)}`}), `${ro} (${counts[roles.indexOf(ro)]})  `)),
        XB.h('div', {text: 'Solid outline: the answer row (the position whose output is scored)' + (this.answerRow ? '; dashed: the token it emitted.' : '.')}));
      return;
    }
    const s = this.roleSeries.find((x) => x.name === this.tokenMode);
    const row = this.ex.records.series[s.name][r];
    if (!row) {
      this.tokSpans.forEach((sp) => { sp.style.background = 'none'; });
      legend.replaceChildren(XB.note(`This record has no /${s.name}.`));
      return;
    }
    const li = Math.min(this.layer + s.layer_offset, row.length - 1);
    const vals = row[li].map(XB.val);
    const per = vals.map((v, i) => (counts[i] ? v / counts[i] : NaN));
    const max = Math.max(...per.filter(Number.isFinite), 1e-12);
    this.tokSpans.forEach((sp, k) => {
      const i = entries[k].roleIndex;
      const a = Number.isFinite(per[i]) ? per[i] / max : 0;
      sp.style.background = XB.alpha('#0072B2', 0.05 + 0.8 * a);
      sp.title = `${entries[k].role}: ${XB.fmt(vals[i], 3)} for the role, ${XB.fmt(per[i], 3)} per token`;
    });
    const rowName = li - s.layer_offset < 0 ? 'the input-embeddings row' : `layer ${li - s.layer_offset}`;
    legend.replaceChildren(XB.h('span', {class: 'colorbar', style: 'background:linear-gradient(to right,rgba(0,114,178,.05),rgba(0,114,178,.85))'}),
      ` 0 → ${XB.fmt(max, 3)} per token, ${rowName}. `,
      `The trace holds /${s.name} per role${s.reduced.length ? ' (averaged over its head axis)' : ''}, not per token: every token shows its role's value ÷ the role's token count. `,
      this.mapSeries ? 'Attention on each image token is in the overlay.' : '');
  }

  // ---------------------------------------------------------------- charts of one sample
  card(parent, title) {
    const c = XB.h('div', {class: 'card'}, XB.h('h3', {text: title}));
    parent.append(c);
    return c;
  }

  condSeries(conds, get) {
    return conds.map((c) => ({label: XB.conditionLabel(c), color: XB.conditionColor(c, this.conditions.indexOf(c)),
      data: get(this.rec(this.si, c))})).filter((x) => x.data);
  }

  logprobCard(parent, si, conds) {
    const rec = this.ex.records;
    const n = Math.max(...conds.map((c) => rec.logprobs[this.rec(si, c)].length));
    const letters = Array.from({length: n}, (_, i) => String.fromCharCode(65 + i));
    const c = this.card(parent, 'Option log-probs under every condition');
    c.id = 'logprob-card';
    this.charts.push(XB.barChart(XB.chartBox(c, 'short'), {labels: letters, series: this.condSeries(conds, (r) => rec.logprobs[r]),
      xTitle: 'option', yTitle: 'log-prob'}));
    c.append(XB.h('div', {class: 'caption', text: `gold ${rec.answer[this.rec(si, conds[0])] || '?'}; predictions: ` +
      conds.map((k) => `${XB.conditionLabel(k)} ${rec.prediction[this.rec(si, k)] || 'unparsed'}`).join(', ')}));
  }

  sampleLayersCard(parent, si, conds) {
    const ms = this.ex.measures.filter((m) => m.layers.length >= 2);
    if (!ms.length) return;
    if (!this.sampleMeasure || !ms.some((m) => m.key === this.sampleMeasure)) this.sampleMeasure = ms[0].key;
    const m = ms.find((x) => x.key === this.sampleMeasure);
    const c = this.card(parent, "This sample's image share per layer");
    c.append(XB.select(ms.map((x) => [x.key, XB.methodLabel(x.method, x.measure)]), m.key, (v) => { this.sampleMeasure = v; this.renderDetail(); }));
    const sc = this.ex.records.layer_scores[m.key];
    this.charts.push(XB.lineChart(XB.chartBox(c, 'short'), {labels: m.layers.map(XB.layerName), xTitle: 'layer',
      yTitle: m.kind === 'share' ? 'image share' : 'image effect', yMin: m.kind === 'share' ? 0 : undefined, yMax: m.kind === 'share' ? 1 : undefined,
      series: this.condSeries(conds, (r) => sc[r])}));
    c.append(XB.h('div', {class: 'caption', text: m.kind === 'share' ? 'C⁺(image) / (C⁺(image) + C⁺(text)) of this record, the estimator\'s per-record definition.'
      : 'The image effect of this record (this method does not measure the text).'}));
  }

  seriesCard(parent, s, si, conds) {
    const rows = this.ex.records.series[s.name];
    const what = s.attrs.value || s.attrs.normalisation || '';
    const c = this.card(parent, XB.seriesLabel(s));
    c.dataset.series = s.name;
    if (s.kind === 'groups') {
      this.charts.push(XB.barChart(XB.chartBox(c, 'short'), {labels: s.groups, series: this.condSeries(conds, (r) => rows[r]),
        xTitle: 'group', yTitle: 'value'}));
    } else {
      const layers = Array.from({length: (s.shape[0] || 0)}, (_, i) => i - s.layer_offset);
      let get = (r) => rows[r];
      if (s.kind === 'letters') {
        const rec = this.ex.records;
        const n = Math.max(...conds.map((k) => (rows[this.rec(si, k)] || [[]])[0].length));
        const letters = Array.from({length: n}, (_, i) => String.fromCharCode(65 + i));
        const r0 = this.rec(si, conds[0]);
        const def = rec.prediction[r0] || rec.answer[r0] || 'A';
        if (!this.lensLetter || !letters.includes(this.lensLetter)) this.lensLetter = letters.includes(def) ? def : letters[0];
        c.append(XB.h('label', {}, 'letter ', XB.select(letters.map((x) => [x, x]), this.lensLetter, (v) => { this.lensLetter = v; this.renderDetail(); })));
        const li = letters.indexOf(this.lensLetter);
        get = (r) => (rows[r] ? rows[r].map((row) => row[li]) : null);
      }
      this.charts.push(XB.lineChart(XB.chartBox(c, 'short'), {labels: layers.map(XB.layerName), series: this.condSeries(conds, get),
        xTitle: 'layer', yTitle: 'value'}));
    }
    if (what) c.append(XB.h('div', {class: 'caption', text: `value: ${what}`}));
  }

  scalarsCard(parent, si, conds) {
    const ss = this.ex.series.filter((s) => s.kind === 'scalar');
    if (!ss.length) return;
    const rows = ss.map((s) => [XB.seriesLabel(s)].concat(conds.map((c) => XB.fmt(this.ex.records.series[s.name][this.rec(si, c)], 4))));
    parent.append(XB.h('div', {class: 'card'}, XB.h('h3', {text: 'One number per record'}),
      XB.table(['dataset'].concat(conds.map(XB.conditionLabel)), rows, {numeric: conds.map((_, i) => i + 1)})));
  }

  responseCard(parent, r) {
    const rec = this.ex.records;
    const gen = (this.tokEntries || []).map((e, k) => [e, this.tokSpans[k]]).filter(([e]) => e.role === 'generated');
    const text = rec.response ? rec.response[r] : '';
    if (!text && !gen.length) return;
    const c = XB.h('div', {class: 'card', id: 'response-card'}, XB.h('h3', {text: `Response (${XB.conditionLabel(this.showCond)})`}));
    if (gen.length) {
      c.append(XB.h('div', {class: 'tokens response', id: 'response-tokens'}, gen.map(([, sp]) => sp)));
      const ans = this.answerPos(r, 0);
      c.append(XB.h('div', {class: 'caption', text: ans === null
        ? 'The trace does not record the answer row of this record (traces before /generation/answer_row).'
        : `Solid outline: the answer row (token ${ans} of the record, where the instruments read); dashed: the token it emitted. Parsed answer: ${rec.prediction[r] || 'unparsed'}.`}));
    }
    if (text) c.append(XB.h('details', {open: !gen.length}, XB.h('summary', {text: 'response text'}), XB.h('div', {class: 'response', text})));
    parent.append(c);
  }
};
