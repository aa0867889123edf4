/* echelon console: draws the ECharts charts the server describes (data-chart JSON)
   in every piece of page htmx loads, and frees them when htmx removes them; applies a
   lint suggestion to the template being written; asks before irreversible actions. */
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

  // A lint hit's suggestion applied with one click: the hit's span of the body (its
  // offsets as a textarea counts them) is replaced, and the input event that follows
  // has htmx redraw the live counter. Should the body have changed since the counter
  // was drawn, the first occurrence of the matched text is replaced instead.
  document.body.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".apply-suggestion") : null;
    var body = document.querySelector("#template-form textarea[name=body]");
    if (!button || !body) {
      return;
    }
    var match = button.getAttribute("data-match");
    var start = parseInt(button.getAttribute("data-start"), 10);
    var end = parseInt(button.getAttribute("data-end"), 10);
    var text = body.value;
    if (text.slice(start, end) !== match) {
      start = text.indexOf(match);
      end = start + match.length;
    }
    if (start < 0) {
      return;
    }
    var suggestion = button.getAttribute("data-suggestion");
    body.value = text.slice(0, start) + suggestion + text.slice(end);
    body.focus();
    body.setSelectionRange(start + suggestion.length, start + suggestion.length);
    body.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // A confirmation for buttons that start, cancel or delete something.
  document.body.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
})();
