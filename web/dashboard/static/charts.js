/* HPE charts: uPlot on top of tables the page already shows.
   Each chart is a <div data-chart="lift|daily" data-chart-data="ID"> whose numbers come
   from <script type="application/json" id="ID"> (data, not code: the CSP allows it).
   The same numbers are in a table next to the chart, for screen readers and for copying. */
(function () {
  "use strict";

  var COLORS = {
    treatment: "#0072b2",
    holdout: "#8a6d00",
    band: "rgba(0, 114, 178, 0.16)",
    zero: "#9aa4b1",
    annotation: "#7a7f87",
  };

  function days(dates) {
    return dates.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
  }

  // The days shown, with half a day each side: uPlot's own range for a single day spans
  // years (a lone point and an axis from 2027 to 2029).
  function dayRange(data) {
    var x = days(data.dates);
    var first = x[0], last = x[x.length - 1];
    return [first - 43200, last + 43200];
  }

  // Ticks on whole days at least: the numbers are per UTC day.
  var DAY = 86400;
  var X_AXIS = { incrs: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 182 * DAY, 365 * DAY] };

  function percent(v) { return v == null ? "—" : (v * 100).toFixed(1) + "%"; }
  function signed(v) { return v == null ? "—" : (v >= 0 ? "+" : "") + (v * 100).toFixed(1) + "%"; }

  // Vertical lines for configuration changes, model versions, recommendations, guardrails.
  function annotationPlugin(annotations) {
    return {
      hooks: {
        draw: function (u) {
          var ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = COLORS.annotation;
          ctx.fillStyle = COLORS.annotation;
          ctx.setLineDash([4, 4]);
          ctx.lineWidth = 1;
          ctx.font = (11 * devicePixelRatio) + "px system-ui, sans-serif";
          annotations.forEach(function (a, i) {
            var x = u.valToPos(Date.parse(a.date + "T12:00:00Z") / 1000, "x", true);
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.fillText(a.short || a.label, x + 3 * devicePixelRatio, u.bbox.top + (12 + (i % 3) * 12) * devicePixelRatio);
          });
          ctx.restore();
        },
      },
    };
  }

  // The first days' intervals are huge (a handful of holdout decisions): scale the axis
  // to the later days' band so the line stays readable; early band parts are clipped.
  function liftRange(data) {
    var from = Math.floor(data.dates.length / 4);
    var values = [0];
    for (var i = from; i < data.dates.length; i++) {
      [data.lift[i], data.low[i], data.high[i]].forEach(function (v) { if (v != null) { values.push(v); } });
    }
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    var pad = (hi - lo) * 0.1 || 0.1;
    return [lo - pad, hi + pad];
  }

  function liftOptions(data, width) {
    var range = liftRange(data);
    var xr = dayRange(data);
    var few = data.dates.length < 3; // too few days for a line: show the points
    return {
      width: width,
      height: 260,
      legend: { show: false },
      scales: { x: { time: true, range: function () { return xr; } }, y: { range: function () { return range; } } },
      axes: [X_AXIS, { values: function (u, vals) { return vals.map(function (v) { return signed(v).replace(".0%", "%"); }); }, size: 70 }],
      series: [
        {},
        { label: "Cumulative lift", stroke: COLORS.treatment, width: 2, points: { show: few } },
        { label: "95% low", stroke: "transparent", points: { show: false } },
        { label: "95% high", stroke: "transparent", points: { show: false } },
        { label: "No lift", stroke: COLORS.zero, dash: [2, 4], width: 1, points: { show: false } },
      ],
      bands: [{ series: [3, 2], fill: COLORS.band }],
      plugins: [annotationPlugin(data.annotations || [])],
    };
  }

  function dailyOptions(data, width) {
    var xr = dayRange(data);
    return {
      width: width,
      height: 260,
      legend: { show: false },
      scales: { x: { time: true, range: function () { return xr; } } },
      axes: [X_AXIS, { values: function (u, vals) { return vals.map(percent); }, size: 60 }],
      series: [
        {},
        { label: "Treatment", stroke: COLORS.treatment, width: 2, points: { show: data.dates.length <= 45 } },
        { label: "Holdout", stroke: COLORS.holdout, width: 2, dash: [6, 3], points: { show: data.dates.length <= 45 } },
      ],
      plugins: [annotationPlugin(data.annotations || [])],
    };
  }

  function draw(root) {
    if (!window.uPlot) { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.getAttribute("data-drawn")) { return; }
      var source = document.getElementById(el.getAttribute("data-chart-data"));
      if (!source) { return; }
      var data = JSON.parse(source.textContent);
      if (!data.dates || data.dates.length === 0) { return; }
      var x = days(data.dates);
      var width = Math.max(320, el.clientWidth || 600);
      var opts, series;
      if (el.getAttribute("data-chart") === "lift") {
        opts = liftOptions(data, width);
        series = [x, data.lift, data.low, data.high, x.map(function () { return 0; })];
      } else {
        opts = dailyOptions(data, width);
        series = [x, data.treatment, data.holdout];
      }
      el.setAttribute("data-drawn", "1");
      el.textContent = "";
      el.uplot = new window.uPlot(opts, series, el); // the tests read its scales
    });
  }

  window.HPECharts = { draw: draw };
})();
