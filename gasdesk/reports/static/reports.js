// Draws the report's charts with the vendored ECharts from the JSON the page embeds (the API's shape).
(function () {
  "use strict";
  function option(chart) {
    var unit = chart.unit || "";
    var tooltip = { trigger: chart.kind === "pie" || chart.kind === "heatmap" ? "item" : "axis",
      valueFormatter: function (v) { return v === null || v === undefined ? "—" : v + unit; } };
    if (chart.kind === "pie") {
      var s = chart.series[0] || { name: "", values: [] };
      return { tooltip: tooltip, legend: { type: "scroll", bottom: 0 },
        series: [{ type: "pie", name: s.name, radius: ["35%", "65%"],
          data: chart.categories.map(function (c, i) { return { name: c, value: s.values[i] }; }) }] };
    }
    if (chart.kind === "heatmap") {
      var data = [], max = 0;
      chart.series.forEach(function (row, y) {
        row.values.forEach(function (v, x) { data.push([x, y, v || 0]); if ((v || 0) > max) { max = v; } });
      });
      return { tooltip: { position: "top" }, grid: { left: 50, right: 20, top: 10, bottom: 70 },
        xAxis: { type: "category", data: chart.categories, splitArea: { show: true } },
        yAxis: { type: "category", data: chart.y_categories, splitArea: { show: true } },
        visualMap: { min: 0, max: max || 1, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
        series: [{ type: "heatmap", name: chart.title, data: data, label: { show: false } }] };
    }
    var stacked = chart.kind === "stacked_bar";
    return { tooltip: tooltip, legend: { type: "scroll", top: 0 }, grid: { left: 50, right: 20, top: 30, bottom: 30 },
      toolbox: { feature: { magicType: { type: ["line", "bar"] }, saveAsImage: {} } },
      xAxis: { type: "category", data: chart.categories },
      yAxis: { type: "value", name: unit },
      series: chart.series.map(function (s) {
        return { type: chart.kind === "line" ? "line" : "bar", name: s.name, data: s.values,
          stack: stacked ? "total" : undefined, smooth: chart.kind === "line", connectNulls: false };
      }) };
  }
  function draw() {
    var source = document.getElementById("report-data");
    if (!source || !window.echarts) { return; }
    var report = JSON.parse(source.textContent);
    var drawn = [];
    report.charts.forEach(function (chart) {
      var el = document.getElementById("chart-" + chart.key);
      if (!el) { return; }
      var instance = window.echarts.init(el);
      instance.setOption(option(chart));
      drawn.push(instance);
    });
    window.addEventListener("resize", function () { drawn.forEach(function (c) { c.resize(); }); });
    document.body.dataset.chartsDrawn = String(drawn.length);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
