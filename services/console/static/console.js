// Progressive enhancement only: every page works without this file.
// The queue's counts refresh every 15 seconds from a JSON endpoint.
(function () {
  "use strict";
  var counts = document.getElementById("queue-counts");
  if (!counts || !window.fetch) { return; }
  var url = counts.getAttribute("data-poll");
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.counts) { return; }
        data.counts.forEach(function (c) {
          var li = counts.querySelector('li[data-state="' + c.state + '"]');
          if (!li) { return; }
          var n = li.querySelector("[data-count]");
          if (n && n.textContent !== String(c.count)) { n.textContent = String(c.count); }
          var o = li.querySelector("[data-overdue]");
          if (o) {
            var text = c.overdue > 0 ? (counts.getAttribute("data-overdue-label") || "overdue: %d").replace("%d", c.overdue) : "";
            if (o.textContent !== text) { o.textContent = text; }
          }
        });
      })
      .catch(function () { /* the page still shows the counts it was served with */ });
  }
  window.setInterval(refresh, 15000);
})();
// The case page's print link: a person can print from the browser too; the link is only
// a shortcut, so it stays hidden where scripts do not run.
(function () {
  var link = document.getElementById("print-link");
  if (!link) { return; }
  link.hidden = false;
  link.addEventListener("click", function (e) { e.preventDefault(); window.print(); });
})();
