/* Metric dashboards: draws the figures embedded in the page (#cm-figures) with the local plotly.js, and opens
   the exposure page of a clicked point (its URL is the point's customdata). */
(function () {
  "use strict";

  function openPoint(event) {
    var point = event && event.points && event.points[0];
    var url = point && point.customdata;
    if (typeof url === "string" && url.charAt(0) === "/") window.location.assign(url);
  }

  function draw() {
    var source = document.getElementById("cm-figures");
    if (!source) return;
    if (!window.Plotly) {
      document.querySelectorAll("[data-figure]").forEach(function (div) {
        div.textContent = "The plotting library did not load; the numbers are in the tables of this page.";
      });
      return;
    }
    var figures = JSON.parse(source.textContent);
    var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
    var jobs = [];
    document.querySelectorAll("[data-figure]").forEach(function (div) {
      var figure = figures[div.getAttribute("data-figure")];
      if (!figure) return;
      jobs.push(Plotly.newPlot(div, figure.data, figure.layout, config).then(function (gd) {
        gd.on("plotly_click", openPoint);
        return gd;
      }));
    });
    Promise.all(jobs).then(function () {
      // For the browser tests and the benchmark: when every figure of the page is drawn.
      window.cmPlotsDrawnAt = performance.now();
      document.body.setAttribute("data-plots-drawn", String(jobs.length));
    });
  }

  window.cmMetrics = { openPoint: openPoint };
  if (document.readyState !== "loading") draw();
  else document.addEventListener("DOMContentLoaded", draw);
})();
