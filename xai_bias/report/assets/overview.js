/* xai_bias report: the overview (provenance, Tables 1 and 2, the estimator's per-layer shares and
   Δ with intervals, suppression, agreement, warnings). Every number comes from the embedded
   Estimate (estimate_to_json) or the consistency tables; nothing is recomputed here. */
'use strict';

XB.Overview = class {
  constructor(root) {
    this.root = root;
    this.traces = XB.data.traces;
    this.charts = [];
    const tables = this.allTables();
    const modes = [...new Set(tables.map((t) => t.mode))];
    this.state = {
      metric: 'share',
      mode: modes.includes('direct') ? 'direct' : modes[0],
      methods: new Set(this.layerKeys(tables)),
      conditions: new Set(XB.orderConditions(tables.map((t) => t.condition))),
      traces: new Set(this.traces.map((_, i) => i)),
    };
    this.modes = modes;
  }

  allTables() {
    return this.traces.flatMap((tr) => (tr.estimate ? tr.estimate.tables : []));
  }

  static key(t) { return `${t.method}|${t.measure}`; }

  layerKeys(tables) {
    const keys = [];
    for (const t of tables) if (t.layers.length >= 2 && !keys.includes(XB.Overview.key(t))) keys.push(XB.Overview.key(t));
    if (this.traces.some((tr) => tr.estimate && tr.estimate.logit_lens.length)) keys.push('logit_lens|curve');
    return keys;
  }

  render() {
    const r = this.root;
    r.replaceChildren();
    r.append(this.renderProvenance(), this.renderNotes(), this.renderTables12());
    this.layersSection = XB.h('div', {});
    r.append(XB.h('h2', {text: 'Modality contributions per layer'}), this.layersSection);
    this.renderLayers();
    this.agreementSection = XB.h('div', {});
    r.append(this.renderOverall(), this.renderSuppression(), this.renderAblation(),
      XB.h('h2', {text: 'Agreement between methods'}), this.agreementSection);
    this.renderAgreement();
  }

  // ---------------------------------------------------------------- provenance and notes
  renderProvenance() {
    const first = ['model_id', 'model_arch', 'model_family', 'dtype', 'device', 'n_layers', 'n_heads', 'roles', 'command',
      'created', 'xai_bias_version', 'sample_set', 'seed', 'settings', 'package_versions'];
    const skip = new Set(['json_attrs', 'in_progress', 'schema_version', 'n_records']);
    const box = XB.h('div', {}, XB.h('h2', {text: 'Provenance'}));
    const grid = XB.h('div', {class: 'grid wide'});
    this.traces.forEach((tr) => {
      const a = tr.provenance.attrs;
      const keys = first.filter((k) => k in a).concat(Object.keys(a).filter((k) => !first.includes(k) && !skip.has(k)).sort());
      const rows = [['file', `${tr.provenance.path} (${(tr.provenance.bytes / 1e6).toFixed(1)} MB)`],
        ['records', String(tr.provenance.n_records)], ['schema_version', String(a.schema_version)]];
      for (const k of keys) rows.push([k, typeof a[k] === 'string' ? a[k] : JSON.stringify(a[k])]);
      const summary = `${tr.label}: ${a.model_id || '?'} · ${a.model_arch || '?'} · ${a.n_layers ?? '?'} layers × ${a.n_heads ?? '?'} heads · ` +
        `${tr.provenance.n_records} records · ${a.created || ''}`;
      grid.append(XB.h('div', {class: 'card'}, XB.h('details', {class: 'provenance'}, XB.h('summary', {text: summary}),
        XB.h('table', {}, XB.h('tbody', {}, rows.map(([k, v]) => XB.h('tr', {}, XB.h('th', {text: k}), XB.h('td', {class: 'wrap', text: v}))))))));
    });
    box.append(grid);
    return box;
  }

  renderNotes() {
    const box = XB.h('div', {}, XB.h('h2', {text: "Warnings and notes"}));
    let any = false;
    this.traces.forEach((tr) => {
      const warns = tr.estimate ? tr.estimate.warnings : [];
      const notes = (tr.notes || []).concat(tr.explorer ? tr.explorer.notes : []);
      if (!warns.length && !notes.length) return;
      any = true;
      const items = warns.map((w) => XB.note(w, 'warn')).concat(notes.map((n) => XB.note(n)));
      box.append(XB.h('h3', {text: `${tr.label}: ${warns.length} warning(s) from the estimator, ${notes.length} note(s)`}), ...items.slice(0, 3));
      if (items.length > 3) box.append(XB.h('details', {}, XB.h('summary', {text: `${items.length - 3} more`}), ...items.slice(3)));
    });
    if (!any) box.append(XB.h('p', {class: 'muted', text: 'The estimator gave no warning.'}));
    return box;
  }

  // ---------------------------------------------------------------- Tables 1 and 2
  renderTables12() {
    const box = XB.h('div', {}, XB.h('h2', {text: 'Missing-modality ablation: Tables 1 and 2'}));
    const grid = XB.h('div', {class: 'grid wide'});
    this.traces.forEach((tr) => {
      const card = XB.h('div', {class: 'card'}, XB.h('h3', {text: tr.label}));
      const t = tr.tables;
      if (!t) {
        card.append(XB.note('No predictions to tabulate.'));
        grid.append(card);
        return;
      }
      const acc = t.accuracy;
      const many = new Set(acc.rows.map((r) => `${r.mode}|${r.variant}`)).size > 1;
      card.append(XB.h('div', {class: 'caption', text: 'Table 1: accuracy per condition and its difference from the complete input (percentage points).'}),
        XB.table((many ? ['mode', 'options'] : []).concat(['condition', 'n', 'accuracy (%)', `Δ vs ${acc.complete}`, 'unparsed']),
          acc.rows.map((r) => (many ? [r.mode, r.variant || 'all'] : []).concat([XB.conditionLabel(r.condition), String(r.n),
            XB.fmt(100 * XB.val(r.accuracy), 3), r.diff === null || r.condition === acc.complete ? '–' : (100 * r.diff >= 0 ? '+' : '') + (100 * r.diff).toFixed(1),
            String(r.unparsed)])), {numeric: many ? [3, 4, 5, 6] : [1, 2, 3, 4]}));
      for (const ct of t.consistency) {
        const roles = ct.roles.map(([k, v]) => `${k} = ${XB.conditionLabel(v)}`).join(', ');
        card.append(XB.h('div', {class: 'caption', text: `Table 2: prediction consistency over ${ct.n} samples (${roles}; mode ${ct.mode}${ct.variant ? ', options ' + ct.variant : ''}).`}),
          XB.table(['conditions', 'consistent', '%', 'inconsistent', '%', 'consistent & correct', 'consistent & wrong'],
            ct.rows.map((r) => [r.name, String(r.consistent), XB.fmt(r.consistent_pct, 3), String(r.inconsistent),
              XB.fmt(r.inconsistent_pct, 3), String(r.consistent_correct), String(r.consistent_wrong)]), {numeric: [1, 2, 3, 4, 5, 6]}));
      }
      for (const n of t.notes || []) card.append(XB.note(n));
      grid.append(card);
    });
    box.append(grid);
    return box;
  }

  // ---------------------------------------------------------------- per-layer charts
  renderLayers() {
    const s = this.state;
    const box = this.layersSection;
    this.charts.forEach((c) => c.destroy());
    this.charts = [];
    box.replaceChildren();
    const tables = this.allTables();
    const keys = this.layerKeys(tables);
    if (!keys.length) {
      box.append(XB.note('No per-layer measurement in the trace(s).'));
      return;
    }
    const rerender = () => this.renderLayers();
    const conds = XB.orderConditions(tables.map((t) => t.condition));
    const controls = XB.h('div', {class: 'controls', id: 'layer-controls'},
      XB.h('label', {}, 'show ', XB.select([['share', 'image share'], ['delta', 'Δ = C(dominant) / C(underutilized)'],
        ['cimage', 'C(image)'], ['ctext', 'C(text)']], s.metric, (v) => { s.metric = v; rerender(); }, {id: 'metric'})),
      this.modes.length > 1 ? XB.h('label', {}, 'mode ', XB.select(this.modes.map((m) => [m, m]), s.mode, (v) => { s.mode = v; rerender(); })) : null,
      XB.checkboxes('methods', keys.map((k) => ({key: k, label: k === 'logit_lens|curve' ? 'logit lens (target probability)' : XB.methodLabel(...k.split('|')),
        color: XB.methodColor(k.split('|')[0])})), s.methods, rerender, 'methods'),
      XB.checkboxes('conditions', conds.map((c, i) => ({key: c, label: XB.conditionLabel(c), color: XB.conditionColor(c, i)})), s.conditions, rerender, 'conditions'),
      this.traces.length > 1 ? XB.checkboxes('traces', this.traces.map((tr, i) => ({key: i, label: `${tr.label} (${['solid', 'dashed', 'dotted', 'dash-dot'][i % 4]})`})),
        s.traces, rerender, 'traces') : null);
    box.append(controls, XB.h('p', {class: 'caption', text: `Bands: ${Math.round(100 * (1 - (this.alpha() || 0.05)))}% percentile bootstrap intervals over samples (${XB.data.n_bootstrap} resamples). Colours: conditions; line styles: traces (the checkboxes above are the legend; hover a point for its value).`}));
    const grid = XB.h('div', {class: 'grid', id: 'layer-charts'});
    box.append(grid);
    for (const key of keys) {
      if (!s.methods.has(key)) continue;
      grid.append(key === 'logit_lens|curve' ? this.lensCard() : this.layerCard(key, tables, conds));
    }
  }

  alpha() {
    const e = this.traces.find((tr) => tr.estimate);
    return e ? e.estimate.alpha : 0.05;
  }

  metricOf(row) {
    switch (this.state.metric) {
      case 'delta': return [row.delta, row.delta_ci];
      case 'cimage': return [row.contribution.image, row.contribution_ci.image];
      case 'ctext': return [row.contribution.text, row.contribution_ci.text];
      default: return [row.share.image, row.share_ci.image];
    }
  }

  seriesFor(pick, conds) {
    const s = this.state;
    const out = [];
    this.traces.forEach((tr, ti) => {
      if (!s.traces.has(ti) || !tr.estimate) return;
      conds.forEach((c, ci) => {
        if (!s.conditions.has(c)) return;
        const got = pick(tr.estimate, c);
        if (!got) return;
        out.push(Object.assign({label: XB.conditionLabel(c) + (this.traces.length > 1 ? ` · ${tr.label}` : ''),
          color: XB.conditionColor(c, ci), dash: XB.DASHES[ti % XB.DASHES.length]}, got));
      });
    });
    return out;
  }

  static align(layers, rows, get) {
    const at = new Map(rows.map((r) => [r.layer, r]));
    return layers.map((l) => (at.has(l) ? get(at.get(l)) : null));
  }

  layerCard(key, tables, conds) {
    const [method, measure] = key.split('|');
    const mine = tables.filter((t) => XB.Overview.key(t) === key && t.mode === this.state.mode);
    const layers = [...new Set(mine.flatMap((t) => t.layers.map((r) => r.layer)))].sort((a, b) => a - b);
    const series = this.seriesFor((est, c) => {
      const t = est.tables.find((x) => XB.Overview.key(x) === key && x.condition === c && x.mode === this.state.mode);
      if (!t) return null;
      return {data: XB.Overview.align(layers, t.layers, (r) => this.metricOf(r)[0]),
        lo: XB.Overview.align(layers, t.layers, (r) => (this.metricOf(r)[1] || [null])[0]),
        hi: XB.Overview.align(layers, t.layers, (r) => (this.metricOf(r)[1] || [null, null])[1])};
    }, conds);
    const card = XB.h('div', {class: 'card', 'data-key': key}, XB.h('h3', {text: XB.methodLabel(method, measure)}));
    const metricName = {share: 'image share', delta: 'Δ (log scale)', cimage: 'C(image)', ctext: 'C(text)'}[this.state.metric];
    const drawable = series.some((x) => XB.plotValues(x.data, this.state.metric === 'delta').some((v) => v !== null));
    if (drawable) {
      this.charts.push(XB.lineChart(XB.chartBox(card), {labels: layers.map(XB.layerName), series, xTitle: 'layer', legend: false,
        yTitle: metricName, log: this.state.metric === 'delta', yMin: this.state.metric === 'share' ? 0 : undefined,
        yMax: this.state.metric === 'share' ? 1 : undefined}));
    } else {
      card.append(XB.note(`No ${metricName} for this method` + (mine.length && !mine[0].included.length
        ? ': it does not measure both modalities (shares and Δ need image and text).' : ' under the selected conditions.')));
    }
    const t0 = mine[0];
    if (t0) card.append(XB.h('div', {class: 'caption', text: `C(M): ${t0.definition}. Overall: ${t0.overall_rule}.` +
      (t0.included.length ? ` Shares over ${t0.included.join(' + ')}.` : '') + (t0.note ? ` ${t0.note}` : '')}));
    return card;
  }

  lensCard() {
    const curves = this.traces.flatMap((tr) => (tr.estimate ? tr.estimate.logit_lens : []));
    const layers = [...new Set(curves.flatMap((c) => c.layers))].sort((a, b) => a - b);
    const conds = XB.orderConditions(curves.map((c) => c.condition));
    const series = this.seriesFor((est, c) => {
      const cv = est.logit_lens.find((x) => x.condition === c && x.mode === this.state.mode);
      if (!cv) return null;
      const rows = cv.layers.map((l, i) => ({layer: l, p: cv.prob[i], ci: cv.prob_ci[i]}));
      return {data: XB.Overview.align(layers, rows, (r) => r.p), lo: XB.Overview.align(layers, rows, (r) => r.ci[0]),
        hi: XB.Overview.align(layers, rows, (r) => r.ci[1])};
    }, conds);
    const card = XB.h('div', {class: 'card', 'data-key': 'logit_lens|curve'}, XB.h('h3', {text: XB.methodLabel('logit_lens') + ': target letter probability'}));
    this.charts.push(XB.lineChart(XB.chartBox(card), {labels: layers.map(XB.layerName), series, xTitle: 'layer', legend: false,
      yTitle: 'probability', yMin: 0, yMax: 1}));
    const est = this.traces.find((tr) => tr.estimate).estimate;
    card.append(XB.h('div', {class: 'caption', text: `Mean probability of the target letter (${est.target}) per layer; every condition follows the letter of its sample's complete record.`}));
    return card;
  }

  // ---------------------------------------------------------------- tables of the estimate
  perTrace(title, caption, build) {
    const box = XB.h('div', {}, XB.h('h2', {text: title}));
    if (caption) box.append(XB.h('p', {class: 'caption', text: caption}));
    this.traces.forEach((tr) => {
      if (!tr.estimate) return;
      const content = build(tr.estimate);
      if (!content) return;
      if (this.traces.length > 1) box.append(XB.h('h3', {text: tr.label}));
      box.append(content);
    });
    return box;
  }

  renderOverall() {
    return this.perTrace('Overall image share and Δ per method and condition',
      'Image share [95% CI] · Δ [95% CI] · dominant modality; layer-free methods (Shapley, ablation) have only this row.', (est) => {
        const conds = XB.orderConditions(est.tables.map((t) => t.condition));
        const modes = [...new Set(est.tables.map((t) => t.mode))];
        const keys = [...new Set(est.tables.map((t) => XB.Overview.key(t)))];
        const rows = [];
        for (const m of modes) for (const k of keys) {
          const row = [XB.methodLabel(...k.split('|')) + (modes.length > 1 ? ` · ${m}` : '')];
          for (const c of conds) {
            const t = est.tables.find((x) => XB.Overview.key(x) === k && x.condition === c && x.mode === m);
            const o = t && t.overall;
            if (!o) row.push('');
            else if (o.share.image === null) row.push(`C(image) ${XB.fmtCI(o.contribution.image, o.contribution_ci.image, 3)} (no share)`);
            else row.push(`${XB.fmtCI(o.share.image, o.share_ci.image, 2)} · Δ ${XB.fmtCI(o.delta, o.delta_ci, 3)} · ${o.dominant || '–'}`);
          }
          if (row.slice(1).some((x) => x)) rows.push(row);
        }
        return XB.table(['method'].concat(conds.map(XB.conditionLabel)), rows, {class: 'overall'});
      });
  }

  renderSuppression() {
    return this.perTrace('Suppression layers', 'The first layer after the image share\'s peak where it falls below the given fraction of the peak.', (est) => {
      if (!est.suppression.length) return XB.note('No per-layer image share to look for suppression in.');
      return XB.table(['method', 'condition', 'mode', 'peak layer', 'peak share', 'suppression layer', 'interval', 'no suppression in'],
        est.suppression.map((s) => [XB.methodLabel(s.method, s.measure), XB.conditionLabel(s.condition), s.mode, XB.layerName(s.peak_layer),
          XB.fmt(s.peak_share, 3), s.layer === null ? 'none' : XB.layerName(s.layer),
          s.interval ? `[${XB.layerName(s.interval[0])}, ${XB.layerName(s.interval[1])}]` : '–',
          s.n_resamples ? XB.pct(s.no_suppression) + ' of resamples' : '–']), {numeric: [3, 4, 5]});
    });
  }

  renderAblation() {
    return this.perTrace('Missing-modality ablation (paired with the complete input)', '', (est) => {
      if (!est.ablation.length) return null;
      return XB.table(['mode', 'condition', 'removes', 'pairs', 'log-prob drop [95% CI]', 'acc. complete', 'acc. condition', 'acc. drop [95% CI]'],
        est.ablation.map((a) => [a.mode, XB.conditionLabel(a.condition), a.removes, String(a.n_pairs), XB.fmtCI(a.logprob_drop, a.logprob_drop_ci, 3),
          XB.pct(a.accuracy_complete), XB.pct(a.accuracy_condition), XB.fmtCI(a.accuracy_drop, a.accuracy_drop_ci, 3)]), {numeric: [3, 4, 5, 6, 7]});
    });
  }

  renderAgreement() {
    const box = this.agreementSection;
    box.replaceChildren();
    const all = this.traces.flatMap((tr) => (tr.estimate ? tr.estimate.agreement : []));
    if (!all.length) {
      box.append(XB.note('Fewer than two methods to compare.'));
      return;
    }
    const kinds = [...new Set(all.map((g) => g.kind))];
    const conds = XB.orderConditions(all.map((g) => g.condition));
    const modes = [...new Set(all.map((g) => g.mode))];
    const st = this.agree = this.agree || {kind: kinds[0], condition: conds[0], mode: modes[0]};
    const redo = () => this.renderAgreement();
    box.append(XB.h('p', {class: 'caption', text: "Spearman correlation of two methods' image measures: 'layers' over their per-layer image-share curves (n = layers), 'samples' over per-sample image scores (n = samples)."}),
      XB.h('div', {class: 'controls', id: 'agreement-controls'},
        XB.h('label', {}, 'over ', XB.select(kinds.map((k) => [k, k]), st.kind, (v) => { st.kind = v; redo(); })),
        XB.h('label', {}, 'condition ', XB.select(conds.map((c) => [c, XB.conditionLabel(c)]), st.condition, (v) => { st.condition = v; redo(); })),
        modes.length > 1 ? XB.h('label', {}, 'mode ', XB.select(modes.map((m) => [m, m]), st.mode, (v) => { st.mode = v; redo(); })) : null));
    const name = (m) => XB.methodLabel(...m.split('/'));
    const grid = XB.h('div', {class: 'grid wide'});
    this.traces.forEach((tr) => {
      if (!tr.estimate) return;
      const gs = tr.estimate.agreement.filter((g) => g.kind === st.kind && g.condition === st.condition && g.mode === st.mode);
      const ms = [...new Set(gs.flatMap((g) => [g.method_a, g.method_b]))];
      const card = XB.h('div', {class: 'card scroll'}, XB.h('h3', {text: tr.label}));
      if (!gs.length) card.append(XB.note('No pair of methods to compare here.'));
      else {
        const cell = (a, b) => {
          if (a === b) return '';
          const g = gs.find((x) => (x.method_a === a && x.method_b === b) || (x.method_a === b && x.method_b === a));
          if (!g) return '';
          const v = XB.val(g.spearman);
          return XB.h('span', {text: `${XB.fmt(g.spearman, 2)} (n=${g.n})`, title: `${name(a)} vs ${name(b)}`,
            style: Number.isFinite(v) ? `background:${XB.alpha(v >= 0 ? '#0072B2' : '#D55E00', Math.abs(v) * 0.55)};padding:0 4px` : ''});
        };
        card.append(XB.table([''].concat(ms.map(name)), ms.map((a) => [name(a)].concat(ms.map((b) => cell(a, b)))), {class: 'agreement'}));
      }
      grid.append(card);
    });
    box.append(grid);
  }
};
