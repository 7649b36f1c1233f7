/* Agenda enhancements (the pages work without them):
 * - third-party players load only after the viewer clicks the consent button;
 * - on a live session page, the side panel becomes tabs (chat, questions, slides) that end at the window's bottom;
 * - times also shown in the viewer's own time zone when it differs from the event's;
 * - the star toggles in place (fetch with the form's CSRF token), without a reload or a jump to the top;
 * - visitors without a live connection (not logged in) learn of a new agenda release by a light poll. */
(function () {
  "use strict";

  function loadScript(src, done) {
    var script = document.createElement("script");
    script.src = src;
    script.onload = function () { done(true); };
    script.onerror = function () { done(false); };
    document.head.appendChild(script);
  }

  /* HLS: the browser's own player where it has one, else the vendored hls.js (loaded only now). */
  function startVideo(box, video, url) {
    var library = box.getAttribute("data-hls-library");
    if (!library || video.canPlayType("application/vnd.apple.mpegurl")) { video.src = url; return; }
    loadScript(library, function (ok) {
      if (ok && window.Hls && window.Hls.isSupported()) {
        var hls = new window.Hls({ enableWorker: false });
        hls.loadSource(url);
        hls.attachMedia(video);
      } else {
        video.src = url;
      }
    });
  }

  function setUpConsent(box) {
    var button = box.querySelector(".stream-consent-button");
    var url = box.getAttribute("data-embed-url");
    if (!button || !url || url.indexOf("https://") !== 0) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var player;
      if (box.getAttribute("data-embed-mode") === "video") {
        player = document.createElement("video");
        player.controls = true;
        player.setAttribute("playsinline", "");
        player.className = "stream-frame stream-video";
        player.setAttribute("aria-label", box.getAttribute("data-embed-title") || "");
        startVideo(box, player, url);
      } else {
        player = document.createElement("iframe");
        player.src = url;
        player.title = box.getAttribute("data-embed-title") || "";
        player.className = "stream-frame";
        player.setAttribute("allow", "autoplay; fullscreen; picture-in-picture");
        player.setAttribute("allowfullscreen", "");
        player.setAttribute("referrerpolicy", "strict-origin-when-cross-origin");
        player.setAttribute("sandbox", "allow-scripts allow-same-origin allow-presentation allow-popups");
      }
      box.classList.add("is-loaded");
      box.replaceChildren(player);
      player.focus();
      var tools = box.parentNode.querySelector("[data-stage-tools]");
      var pip = tools && tools.querySelector("[data-stage-pip]");
      if (pip && player.tagName === "VIDEO" && document.pictureInPictureEnabled) {
        pip.hidden = false;
        pip.addEventListener("click", function () {
          if (document.pictureInPictureElement) { document.exitPictureInPicture(); }
          else { player.requestPictureInPicture().catch(function () {}); }
        });
      }
      fitStage();
    });
  }

  /* --- the stage: tabs for chat, questions and slides; the side panel ends at the bottom of the window ---- */

  var stageSide = null;

  function fitStage() {
    if (!stageSide) { return; }
    // Measured from the top of the page, so the chat input is on screen when the page opens.
    var top = stageSide.getBoundingClientRect().top + window.scrollY;
    var room = window.innerHeight - top - 12;
    stageSide.style.height = Math.max(room, 320) + "px";
  }

  function setUpStage(stage) {
    var side = stage.querySelector("[data-stage-side]");
    if (!side) { return; }
    var panels = [];
    ["chat", "questions", "slides"].forEach(function (key) {
      var panel = side.querySelector("[data-stage-tab='" + key + "']");
      if (panel) { panels.push({ key: key, panel: panel }); }
    });
    if (!panels.length) { return; }
    var list = document.createElement("div");
    list.className = "stage-tabs";
    list.setAttribute("role", "tablist");
    list.setAttribute("aria-label", stage.getAttribute("data-label-tabs") || "");
    var tabs = panels.map(function (item, index) {
      var tab = document.createElement("button");
      tab.type = "button";
      tab.className = "stage-tab";
      tab.id = "stage-tab-" + item.key;
      tab.setAttribute("role", "tab");
      tab.textContent = stage.getAttribute("data-label-" + item.key) || item.key;
      if (!item.panel.id) { item.panel.id = "stage-panel-" + item.key; }
      tab.setAttribute("aria-controls", item.panel.id);
      item.panel.setAttribute("role", "tabpanel");
      item.panel.setAttribute("aria-labelledby", tab.id);
      item.panel.classList.add("stage-panel");
      tab.addEventListener("click", function () { select(index, false); });
      tab.addEventListener("keydown", function (event) {
        var next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: panels.length - 1 }[event.key];
        if (next === undefined) { return; }
        event.preventDefault();
        select((next + panels.length) % panels.length, true);
      });
      list.appendChild(tab);
      return tab;
    });
    function select(chosen, focus) {
      tabs.forEach(function (tab, index) {
        var on = index === chosen;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
        panels[index].panel.hidden = !on;
        // The panel's own container is shown only for the selected tab (chat and questions share one).
        panels[index].panel.classList.toggle("is-selected", on);
      });
      side.setAttribute("data-selected", panels[chosen].key);
      if (focus) { tabs[chosen].focus(); }
    }
    side.insertBefore(list, side.firstChild);
    select(0, false);
    stage.classList.add("is-enhanced");
    stageSide = side;
    fitStage();
    window.addEventListener("resize", fitStage);

    var theatre = stage.querySelector("[data-stage-theatre]");
    var tools = stage.querySelector("[data-stage-tools]");
    if (theatre && tools) {
      tools.hidden = false;
      theatre.addEventListener("click", function () {
        var on = document.body.classList.toggle("stage-theatre");
        theatre.setAttribute("aria-pressed", on ? "true" : "false");
        fitStage();
      });
    }
  }

  function showLocalTimes() {
    var eventZone = document.body.getAttribute("data-event-timezone");
    var viewerZone;
    try { viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
    if (!eventZone || !viewerZone || eventZone === viewerZone) { return; }
    var lang = document.documentElement.lang || undefined;
    var texts = document.getElementById("page-texts");
    var label = (texts && texts.getAttribute("data-label-your-time")) || "your time";
    var zoneText = (texts && texts.getAttribute("data-label-your-zone")) || "Your time zone: %s.";
    var fmt = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: viewerZone });
    var probe = new Date();
    var sameOffset = new Intl.DateTimeFormat("en", { timeZone: eventZone, hour: "numeric", minute: "numeric", day: "numeric" }).format(probe) ===
      new Intl.DateTimeFormat("en", { timeZone: viewerZone, hour: "numeric", minute: "numeric", day: "numeric" }).format(probe);
    if (sameOffset) { return; }
    document.querySelectorAll("time[data-local-time]").forEach(function (el) {
      var start = new Date(el.getAttribute("datetime"));
      if (isNaN(start.getTime())) { return; }
      var text = fmt.format(start);
      var endAttr = el.getAttribute("data-local-end");
      if (endAttr) { text += "–" + fmt.format(new Date(endAttr)); }
      var note = document.createElement("span");
      note.className = "local-time";
      note.textContent = " (" + label + ": " + text + ")";
      el.after(note);
    });
    var zoneNote = document.querySelector(".local-zone-note");
    if (zoneNote) {
      zoneNote.textContent = zoneText.replace("%s", viewerZone);
      zoneNote.hidden = false;
    }
  }

  /* Star in place; on any unexpected answer the form is sent the ordinary way (which also logs in, say). */
  function setUpStar(form) {
    var busy = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) { return; }
      busy = true;
      var button = form.querySelector(".star-button");
      // form.getAttribute, not form.action: the form has an input named "action", which shadows the property.
      fetch(form.getAttribute("action"), { method: "POST", body: new FormData(form), credentials: "same-origin",
                           headers: { "Accept": "application/json" } })
        .then(function (response) {
          return response.ok ? response.json() : Promise.reject(new Error(String(response.status)));
        })
        .then(function (data) {
          if (!data || !data.ok) { throw new Error("unexpected answer"); }
          var on = Boolean(data.starred);
          button.setAttribute("aria-pressed", on ? "true" : "false");
          button.title = form.getAttribute(on ? "data-label-remove" : "data-label-add");
          form.querySelector("input[name=action]").value = on ? "unstar" : "star";
          form.querySelector(".star-glyph").textContent = on ? "\u2605" : "\u2606";
          var state = form.querySelector(".star-state");
          if (state) { state.textContent = button.title + state.textContent.slice(state.textContent.indexOf(":")); }
          var status = document.getElementById("star-status");
          if (status) { status.textContent = data.message; }
          busy = false;
        })
        .catch(function () { form.submit(); });
    });
  }

  /* Logged-in people get "agenda:changed" over the socket (live.js); everyone else asks once a minute for the
   * release number (a 304 when nothing changed), and only while the page is visible. */
  function pollAgenda(url) {
    if (typeof window.io === "function") { return; }
    var known;
    var shown = false;
    function showNotice() {
      var texts = document.getElementById("page-texts");
      var notice = document.createElement("p");
      notice.id = "agenda-changed-notice";
      notice.className = "flash flash-info";
      notice.setAttribute("role", "status");
      notice.textContent = ((texts && texts.getAttribute("data-label-agenda")) || "The agenda has changed.") + " ";
      var reload = document.createElement("button");
      reload.type = "button";
      reload.className = "link-button";
      reload.textContent = (texts && texts.getAttribute("data-label-reload")) || "Reload page";
      reload.addEventListener("click", function () { window.location.reload(); });
      notice.appendChild(reload);
      var main = document.getElementById("main");
      if (main) { main.insertBefore(notice, main.firstChild); }
    }
    function poll() {
      if (shown || document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          if (known === undefined) { known = data.release; return; }
          if (data.release !== known) { shown = true; showNotice(); }
        })
        .catch(function () { /* offline for a moment: the next poll tries again */ });
    }
    poll();
    window.setInterval(poll, 60000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var pollUrl = document.body.getAttribute("data-agenda-poll");
    if (pollUrl) { pollAgenda(pollUrl); }
    document.querySelectorAll("form.star-form").forEach(setUpStar);
    document.querySelectorAll(".stream-consent").forEach(setUpConsent);
    document.querySelectorAll("[data-stage]").forEach(setUpStage);
    showLocalTimes();
  });
}());
