// Live pages without a reload: when an alert changes (the server's event stream), the
// page's main part is fetched again and swapped in. Pages work without this script.
(function () {
  "use strict";
  if (!window.EventSource || !document.getElementById("main")) return;
  var live = document.querySelector("[data-live], #team-table");
  if (!live) return;
  var pending = null;
  function refresh() {
    pending = null;
    fetch(window.location.href, { headers: { "X-Pacer-Fragment": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var main = document.getElementById("main");
        main.innerHTML = html;
        main.setAttribute("data-refreshed", String(Date.now()));
      });
  }
  var stream = new EventSource("/v1/alerts/stream", { withCredentials: true });
  stream.addEventListener("alert", function () {
    if (!pending) pending = setTimeout(refresh, 250);
  });
})();
