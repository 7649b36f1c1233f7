/* Schedule widget for other sites (docs/widget.md): the released programme, or what runs now and next.
 *
 *   <div id="programm"></div>
 *   <script src="https://konferenz.example.org/static/js/widget.js" data-event="SLUG"
 *           data-view="programme" data-target="programm"></script>
 *
 * Reads the public API of the server the script came from (CORS: any origin may read it, no cookies sent),
 * so only released sessions ever appear. Every text from the data goes in with textContent, never as HTML. */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) { return; }
  var base = new URL(script.src, document.baseURI).origin;
  var slug = script.getAttribute("data-event") || "";
  var view = script.getAttribute("data-view") === "now-next" ? "now-next" : "programme";
  var lang = (script.getAttribute("data-lang") || document.documentElement.lang || "de").slice(0, 2);
  var refreshSeconds = parseInt(script.getAttribute("data-refresh") || "60", 10);
  var TEXTS = {
    de: { now: "Jetzt", next: "Als Nächstes", nothingNow: "Gerade läuft nichts.", nothingNext: "Nichts mehr geplant.",
          cancelled: "abgesagt", empty: "Das Programm ist noch nicht veröffentlicht.",
          failed: "Das Programm konnte nicht geladen werden.", loading: "Programm wird geladen …",
          programme: "Programm" },
    en: { now: "Now", next: "Next", nothingNow: "Nothing is on right now.", nothingNext: "Nothing else planned.",
          cancelled: "cancelled", empty: "The programme has not been published yet.",
          failed: "The programme could not be loaded.", loading: "Loading the programme …",
          programme: "Programme" }
  };
  var t = TEXTS[lang] || TEXTS.de;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function target() {
    var id = script.getAttribute("data-target");
    var box = id ? document.getElementById(id) : null;
    if (!box) {
      box = el("div");
      script.parentNode.insertBefore(box, script.nextSibling);
    }
    box.classList.add("konferenz-widget");
    box.setAttribute("data-view", view);
    return box;
  }

  function addStyles() {
    if (script.getAttribute("data-style") === "none" || document.querySelector("link[data-konferenz-widget]")) { return; }
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = base + "/static/css/widget.css";
    link.setAttribute("data-konferenz-widget", "");
    document.head.appendChild(link);
  }

  function sessionUrl(entry) {
    if (typeof entry.id !== "number" || !isFinite(entry.id)) { return null; }
    return base + "/events/" + encodeURIComponent(slug) + "/sessions/" + String(Math.floor(entry.id));
  }

  /* "2027-03-18T09:00:00+01:00": date and clock time as the event's own time zone gives them. */
  function dayOf(iso) { return String(iso || "").slice(0, 10); }
  function clockOf(iso) { return String(iso || "").slice(11, 16); }

  function formatDay(day) {
    var parts = day.split("-");
    var date = new Date(Date.UTC(+parts[0], +parts[1] - 1, +parts[2], 12));
    try {
      return date.toLocaleDateString(lang, { weekday: "long", day: "numeric", month: "long", timeZone: "UTC" });
    } catch (e) {
      return day;
    }
  }

  function item(entry) {
    var li = el("li", "konferenz-widget-session" + (entry.cancelled ? " is-cancelled" : "") +
      (entry.kind === "break" ? " is-break" : ""));
    li.appendChild(el("span", "konferenz-widget-time", clockOf(entry.start) + "–" + clockOf(entry.end)));
    var url = entry.kind === "break" ? null : sessionUrl(entry);
    var title = url ? el("a", "konferenz-widget-title", entry.title) : el("span", "konferenz-widget-title", entry.title);
    if (url) { title.href = url; title.rel = "noopener"; }
    li.appendChild(title);
    if (entry.cancelled) { li.appendChild(el("span", "konferenz-widget-cancelled", t.cancelled)); }
    var details = [];
    if (entry.room) { details.push(entry.room); }
    var names = (entry.speakers || []).map(function (p) { return p && p.name; }).filter(Boolean);
    if (names.length) { details.push(names.join(", ")); }
    if (details.length) { li.appendChild(el("span", "konferenz-widget-details", details.join(" · "))); }
    return li;
  }

  function list(entries, emptyText) {
    if (!entries.length) { return el("p", "konferenz-widget-empty", emptyText); }
    var ul = el("ul", "konferenz-widget-list");
    entries.forEach(function (entry) { ul.appendChild(item(entry)); });
    return ul;
  }

  function renderProgramme(box, event, sessions) {
    var days = {};
    var order = [];
    sessions.forEach(function (entry) {
      var day = dayOf(entry.start);
      if (!days[day]) { days[day] = []; order.push(day); }
      days[day].push(entry);
    });
    order.sort();
    order.forEach(function (day) {
      var section = el("section", "konferenz-widget-day");
      section.appendChild(el("h3", null, formatDay(day)));
      section.appendChild(list(days[day], t.empty));
      box.appendChild(section);
    });
  }

  function renderNowNext(box, sessions) {
    var now = Date.now();
    var live = [];
    var upcoming = [];
    var nextRooms = {};
    sessions.forEach(function (entry) {
      if (entry.cancelled || entry.kind === "break") { return; }
      var start = Date.parse(entry.start);
      var end = Date.parse(entry.end);
      if (start <= now && now < end) { live.push(entry); }
      else if (start > now && !nextRooms[entry.room]) { nextRooms[entry.room] = true; upcoming.push(entry); }
    });
    var nowBox = el("section", "konferenz-widget-now");
    nowBox.appendChild(el("h3", null, t.now));
    nowBox.appendChild(list(live, t.nothingNow));
    var nextBox = el("section", "konferenz-widget-next");
    nextBox.appendChild(el("h3", null, t.next));
    nextBox.appendChild(list(upcoming, t.nothingNext));
    box.appendChild(nowBox);
    box.appendChild(nextBox);
  }

  function getJson(path) {
    return fetch(base + path, { credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      });
  }

  function load(box) {
    var prefix = "/api/v1/events/" + encodeURIComponent(slug);
    Promise.all([getJson(prefix), getJson(prefix + "/sessions")]).then(function (results) {
      var event = results[0] || {};
      var sessions = (results[1] && results[1].sessions) || [];
      sessions = sessions.filter(function (entry) { return entry && entry.start && entry.end; });
      sessions.sort(function (a, b) { return Date.parse(a.start) - Date.parse(b.start); });
      box.textContent = "";
      var heading = el("h2", "konferenz-widget-heading");
      var link = el("a", null, event.title || t.programme);
      link.href = base + "/events/" + encodeURIComponent(slug) + "/agenda";
      heading.appendChild(link);
      box.appendChild(heading);
      if (!sessions.length) {
        box.appendChild(el("p", "konferenz-widget-empty", t.empty));
      } else if (view === "now-next") {
        renderNowNext(box, sessions);
      } else {
        renderProgramme(box, event, sessions);
      }
      box.setAttribute("data-state", "ready");
    }).catch(function () {
      box.textContent = "";
      box.appendChild(el("p", "konferenz-widget-error", t.failed));
      box.setAttribute("data-state", "failed");
    });
  }

  function start() {
    var box = target();
    addStyles();
    box.setAttribute("aria-live", "polite");
    box.textContent = t.loading;
    load(box);
    if (view === "now-next" && refreshSeconds >= 15) {
      window.setInterval(function () { load(box); }, refreshSeconds * 1000);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
