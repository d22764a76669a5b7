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

// The log viewer (/logs/{site}/{log}): filter and highlight the lines as typed, mark the
// line at ?at= (a status message's or a timeline bar's time), and, every second while the
// page is open, append the lines written since (the fragment carries the next cursor).
(function () {
  "use strict";
  var TAIL_MS = 1000;

  function rowText(row) { return row.textContent.toLowerCase(); }

  function apply(lines) {
    var filter = document.getElementById("log-filter").value.trim().toLowerCase();
    var mark = document.getElementById("log-highlight").value.trim().toLowerCase();
    var rows = lines.rows;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var text = rowText(rows[i]);
      rows[i].hidden = filter !== "" && text.indexOf(filter) < 0;
      rows[i].classList.toggle("highlight", mark !== "" && text.indexOf(mark) >= 0);
      if (!rows[i].hidden) { shown++; }
    }
    document.getElementById("log-count").textContent =
      rows.length + " lines" + (filter ? ", " + shown + " shown" : "");
  }

  function jump(lines) {
    var at = lines.getAttribute("data-at");
    if (!at || lines.getAttribute("data-jumped") === "true") { return; }
    var wanted = Date.parse(at);
    var rows = lines.rows;
    for (var i = 0; i < rows.length; i++) {
      var time = rows[i].getAttribute("data-time");
      if (time && Date.parse(time) >= wanted) {
        rows[i].classList.add("jump-target");
        rows[i].setAttribute("aria-current", "true");
        rows[i].scrollIntoView({ block: "center" });
        lines.setAttribute("data-jumped", "true");
        document.getElementById("log-follow").checked = false;
        return;
      }
    }
  }

  function follow() {
    if (document.getElementById("log-follow").checked) {
      var box = document.getElementById("log-scroll");
      box.scrollTop = box.scrollHeight;
    }
  }

  function append(lines, html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    var page = holder.content.querySelector("tbody");
    if (page === null) { return false; }
    lines.setAttribute("data-file", page.getAttribute("data-file"));
    lines.setAttribute("data-offset", page.getAttribute("data-offset"));
    if (page.getAttribute("data-gap") === "true") {
      document.getElementById("log-status").textContent =
        "The log rolled over more than once since the last read: some lines were missed.";
    }
    var added = page.rows.length;
    while (page.rows.length > 0) {
      var row = page.rows[0];
      row.classList.add("new-line");
      lines.appendChild(row);
    }
    if (added > 0) {
      apply(lines);
      jump(lines);
      follow();
      lines.setAttribute("data-appended", String(Number(lines.getAttribute("data-appended") || 0) + added));
    }
    return page.getAttribute("data-more") === "true" && added > 0;
  }

  function tail(lines) {
    if (document.hidden) { window.setTimeout(function () { tail(lines); }, TAIL_MS); return; }
    var url = lines.getAttribute("data-log-tail") + "?file=" +
      encodeURIComponent(lines.getAttribute("data-file")) + "&offset=" +
      encodeURIComponent(lines.getAttribute("data-offset"));
    var more = false;
    fetch(url, { cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (answer) {
        if (answer.status === 401) { window.location.reload(); }
        return answer.ok ? answer.text() : null;
      })
      .then(function (html) { if (html !== null) { more = append(lines, html); } })
      .catch(function () { /* the console is down: try again later */ })
      .then(function () {
        lines.setAttribute("data-polled", new Date().toISOString());
        window.setTimeout(function () { tail(lines); }, more ? 0 : TAIL_MS);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var lines = document.getElementById("log-lines");
    if (lines === null) { return; }
    document.getElementById("log-filter").addEventListener("input", function () { apply(lines); });
    document.getElementById("log-highlight").addEventListener("input", function () { apply(lines); });
    document.querySelector("form.log-tools").addEventListener("submit", function (e) { e.preventDefault(); });
    apply(lines);
    jump(lines);
    if (lines.getAttribute("data-at") === null) { follow(); }
    tail(lines);
  });
})();
