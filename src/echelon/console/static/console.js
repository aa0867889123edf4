/* echelon console: draws the ECharts charts the server describes (data-chart JSON)
   in every piece of page htmx loads, and frees them when htmx removes them. */
(function () {
  "use strict";
  var charts = [];

  function draw(root) {
    var nodes = root.querySelectorAll ? root.querySelectorAll("[data-chart]") : [];
    if (root.matches && root.matches("[data-chart]")) {
      nodes = [root].concat(Array.prototype.slice.call(nodes));
    }
    Array.prototype.forEach.call(nodes, function (node) {
      if (node.dataset.drawn === "1" || typeof echarts === "undefined") {
        return;
      }
      node.dataset.drawn = "1";
      var chart = echarts.init(node, null, { renderer: "canvas" });
      chart.setOption(JSON.parse(node.dataset.chart));
      charts.push(chart);
    });
  }

  function forget(node) {
    if (node.dataset && node.dataset.drawn === "1" && typeof echarts !== "undefined") {
      var chart = echarts.getInstanceByDom(node);
      if (chart) {
        charts = charts.filter(function (c) { return c !== chart; });
        chart.dispose();
      }
    }
  }

  htmx.onLoad(draw);
  document.body.addEventListener("htmx:beforeCleanupElement", function (event) {
    forget(event.target);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });

  // A confirmation for buttons that start, cancel or delete something.
  document.body.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
})();
