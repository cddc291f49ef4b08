// Keeps the figures of batches still running live: every second, asks
// /ui/api/progress for the batches on the page that have not ended and writes the
// answers into their [data-field] elements. Stops once every batch shown has ended.
(function () {
  "use strict";
  var every = 1000;

  function running() {
    return Array.prototype.filter.call(
      document.querySelectorAll("[data-batch]"),
      function (el) { return el.getAttribute("data-done") !== "true"; }
    );
  }

  function show(el, p) {
    el.querySelectorAll("[data-field]").forEach(function (f) {
      var key = f.getAttribute("data-field");
      var value = key.indexOf("counts.") === 0 ? p.counts[key.slice(7)] : p[key];
      f.textContent = value === undefined || value === null ? "" : String(value);
    });
    var bar = el.querySelector("progress");
    if (bar) {
      bar.max = p.total || 1;
      bar.value = p.finished;
    }
    el.setAttribute("data-status", p.status);
    el.setAttribute("data-done", p.done ? "true" : "false");
  }

  function tick() {
    var live = running();
    if (!live.length) return;
    var ids = live.map(function (el) { return el.getAttribute("data-batch"); });
    fetch("/ui/api/progress?ids=" + encodeURIComponent(ids.join(",")), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (r) {
      if (r.status === 401) { window.location.href = "/ui/login"; return null; }
      return r.ok ? r.json() : null;
    }).then(function (data) {
      if (data) live.forEach(function (el) {
        var p = data[el.getAttribute("data-batch")];
        if (p) show(el, p);
      });
    }).catch(function () { /* the next tick tries again */ })
      .then(function () { window.setTimeout(tick, every); });
  }

  window.setTimeout(tick, every);
})();
