/* xai_bias report: start-up. Renders the overview and the explorer's sample list, then marks the
   page ready (performance mark "xai-ready", <html data-ready="1">). */
'use strict';

(function start() {
  const d = XB.data;
  const traces = d.traces.map((t) => `${t.label} (${t.provenance.n_records} records)`).join(' · ');
  document.getElementById('subtitle').textContent = `${traces} · generated ${d.generated} by xai_bias ${d.xai_bias_version}`;
  document.getElementById('footer').textContent = 'Self-contained: every script, image and number is inside this file and ' +
    'nothing is fetched. Charts: Chart.js 4.6.1 (MIT licence, embedded). Numbers in the overview are the estimator\'s ' +
    '(xai_bias.estimate) and the ablation tables\' (xai_bias.consistency); the explorer shows the trace\'s records.';
  const overview = new XB.Overview(document.getElementById('view-overview'));
  overview.render();
  const explorer = new XB.Explorer(document.getElementById('view-explorer'));
  let explorerShown = false;
  const show = (view) => {
    for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.view === view));
    document.getElementById('view-overview').hidden = view !== 'overview';
    document.getElementById('view-explorer').hidden = view !== 'explorer';
    if (view === 'explorer' && !explorerShown) {  // charts need a visible box to size themselves
      explorerShown = true;
      explorer.render();
      performance.mark('xai-explorer-ready');
      document.documentElement.dataset.explorerReady = '1';
    }
  };
  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => show(b.dataset.view));
  XB.overview = overview;
  XB.explorer = explorer;
  XB.show = show;
  if (location.hash === '#explorer') show('explorer');
  performance.mark('xai-ready');
  document.documentElement.dataset.ready = '1';
})();
