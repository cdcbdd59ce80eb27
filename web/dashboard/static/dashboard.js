/* HPE dashboard: small upgrades on top of pages that already work without JavaScript.
   No inline script anywhere (the Content-Security-Policy forbids it): behaviour hangs
   off data- attributes, chart data comes from <script type="application/json"> blocks. */
(function () {
  "use strict";

  // A <select data-autosubmit> submits its form when changed (the workspace menu).
  function autosubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  // A form with data-confirm asks before it submits (pause, deactivate, rollback).
  function confirmations(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  function upgrade(root) {
    autosubmit(root);
    confirmations(root);
    if (window.HPECharts) { window.HPECharts.draw(root); }
  }

  document.addEventListener("DOMContentLoaded", function () { upgrade(document); });
  // Fragments swapped in by htmx get the same upgrades.
  document.addEventListener("htmx:afterSwap", function (event) { upgrade(event.target); });
})();
