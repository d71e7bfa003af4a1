/* xai_bias report: line charts with confidence bands and grouped bar charts (Chart.js 4). */
'use strict';

Chart.defaults.font.family = '"DejaVu Sans", "Helvetica Neue", Arial, sans-serif';
Chart.defaults.font.size = 11;
Chart.defaults.animation = false;
Chart.defaults.color = '#333';

/* Legend click: hide / show a line together with its band. */
XB.toggleGroup = function (e, item, legend) {
  const chart = legend.chart;
  const group = chart.data.datasets[item.datasetIndex]._group;
  const show = !chart.isDatasetVisible(item.datasetIndex);
  chart.data.datasets.forEach((ds, i) => { if (ds._group === group) chart.setDatasetVisibility(i, show); });
  chart.update();
};

XB.chartBox = function (parent, cls) {
  const box = XB.h('div', {class: 'chart' + (cls ? ' ' + cls : '')});
  const canvas = XB.h('canvas', {});
  box.append(canvas);
  parent.append(box);
  return canvas;
};

/* Values for a chart axis: null for what cannot be drawn (NaN, ±inf, <= 0 on a log axis). */
XB.plotValues = function (arr, log) {
  return (arr || []).map((x) => {
    const v = XB.val(x);
    if (!Number.isFinite(v) || (log && v <= 0)) return null;
    return v;
  });
};

/* series: [{label, color, dash, data, lo, hi}] over opts.labels (x categories). */
XB.lineChart = function (canvas, opts) {
  const datasets = [];
  opts.series.forEach((s, k) => {
    const group = 'g' + k;
    if (s.lo && s.hi) {
      datasets.push({label: s.label + ' (low)', data: XB.plotValues(s.lo, opts.log), borderWidth: 0, pointRadius: 0,
        fill: false, _band: true, _group: group, backgroundColor: 'transparent'});
      datasets.push({label: s.label + ' (high)', data: XB.plotValues(s.hi, opts.log), borderWidth: 0, pointRadius: 0,
        fill: '-1', _band: true, _group: group, backgroundColor: XB.alpha(s.color, 0.16)});
    }
    datasets.push({label: s.label, data: XB.plotValues(s.data, opts.log), borderColor: s.color, backgroundColor: s.color,
      borderDash: s.dash || [], borderWidth: 1.6, pointRadius: 2.2, fill: false, _group: group, spanGaps: false});
  });
  return new Chart(canvas, {
    type: 'line',
    data: {labels: opts.labels, datasets},
    options: {
      responsive: true, maintainAspectRatio: false, normalized: true,
      interaction: {mode: 'nearest', intersect: false},
      scales: {
        x: {title: {display: !!opts.xTitle, text: opts.xTitle}},
        y: {type: opts.log ? 'logarithmic' : 'linear', min: opts.yMin, max: opts.yMax,
          title: {display: !!opts.yTitle, text: opts.yTitle}},
      },
      plugins: {
        legend: {display: opts.legend !== false, position: 'bottom',
          labels: {boxWidth: 14, boxHeight: 2, filter: (item, data) => !data.datasets[item.datasetIndex]._band},
          onClick: XB.toggleGroup},
        tooltip: {filter: (item) => !item.dataset._band,
          callbacks: {label: (c) => `${c.dataset.label}: ${XB.fmt(c.parsed.y, 3)}`}},
      },
    },
  });
};

/* Grouped bars: series [{label, color, data}] over opts.labels. */
XB.barChart = function (canvas, opts) {
  return new Chart(canvas, {
    type: 'bar',
    data: {labels: opts.labels, datasets: opts.series.map((s) => ({label: s.label, data: XB.plotValues(s.data),
      backgroundColor: s.color, borderColor: s.color, borderWidth: 0}))},
    options: {
      responsive: true, maintainAspectRatio: false,
      scales: {x: {title: {display: !!opts.xTitle, text: opts.xTitle}},
        y: {title: {display: !!opts.yTitle, text: opts.yTitle}, reverse: !!opts.reverse}},
      plugins: {legend: {position: 'bottom', labels: {boxWidth: 12}},
        tooltip: {callbacks: {label: (c) => `${c.dataset.label}: ${XB.fmt(c.parsed.y, 4)}`}}},
    },
  });
};
