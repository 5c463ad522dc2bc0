// ClientHub admin UI helpers: charts on the dashboard, confirmations. No build step.
(function () {
  "use strict";
  function drawCharts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var spec = JSON.parse(document.getElementById(canvas.dataset.chart).textContent);
      canvas.dataset.drawn = "1";
      new window.Chart(canvas, {
        type: spec.type || "line",
        data: { labels: spec.labels, datasets: spec.datasets },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
          scales: spec.stacked ? { x: { stacked: true }, y: { stacked: true, beginAtZero: true } }
                               : { y: { beginAtZero: true } }
        }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (e) { drawCharts(e.target); });
  // <form data-confirm="…">: ask before destructive or publishing actions.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  }, true);
  // A rule's condition or action row: ✕ removes it from the form (saved when the form is).
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-remove-row]");
    if (!button) return;
    var row = button.closest(".rule-row");
    if (row) row.remove();
  });
  // <select data-autosubmit>: submit its form on change (the CSP allows no inline onchange=).
  document.addEventListener("change", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-autosubmit")) e.target.form.submit();
  });
})();
