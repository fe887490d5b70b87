// Draws every analytics chart from its JSON block (`data-figure` names the block) with
// plotly.js, and on the page (not the offline report) opens the examples behind a clicked bar.
"use strict";

(function () {
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function draw(element) {
    const payload = JSON.parse(document.getElementById(element.dataset.figure).textContent);
    const figure = payload.figure;
    Plotly.newPlot(element, figure.data, figure.layout, CONFIG).then(function () {
      element.dataset.drawn = "true";
    });
    if (payload.links && payload.links.length) {
      element.on("plotly_click", function (event) { openExamples(event, payload.links); });
    }
  }

  // Every clickable point carries its table row as customdata; the row's link is the
  // examples list's query for it (the page's filters and the row's own).
  function openExamples(event, links) {
    const point = event.points && event.points[0];
    const row = point ? point.customdata : undefined;
    const query = typeof row === "number" ? links[row] : null;
    if (!query) return;
    const base = document.getElementById("charts").dataset.examplesUrl;
    window.location.assign(base + "?" + query);
  }

  function drawAll() {
    document.querySelectorAll("[data-figure]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
