// updatesync console: live refresh. Each element with data-fragment holds a server-rendered
// fragment; while the fragment says data-live="true" (a sync runs) it is fetched again every
// second and swapped in, otherwise every 10 seconds. No framework, no other script.
(function () {
  "use strict";
  var LIVE_MS = 1000;
  var IDLE_MS = 10000;

  function isLive(holder) {
    var fragment = holder.querySelector("[data-live]");
    return fragment !== null && fragment.getAttribute("data-live") === "true";
  }

  function schedule(holder) {
    window.setTimeout(function () { refresh(holder); }, isLive(holder) ? LIVE_MS : IDLE_MS);
  }

  function refresh(holder) {
    if (document.hidden) { schedule(holder); return; }
    fetch(holder.getAttribute("data-fragment"), { cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (answer) {
        if (answer.status === 401) { window.location.reload(); }  // signed out: to /login
        return answer.ok ? answer.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          holder.innerHTML = html;
          holder.setAttribute("data-refreshed", new Date().toISOString());
        }
      })
      .catch(function () { /* the console itself is down: try again later */ })
      .then(function () { schedule(holder); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var holders = document.querySelectorAll("[data-fragment]");
    for (var i = 0; i < holders.length; i++) { schedule(holders[i]); }
  });
})();
