/* Agenda enhancements (the pages work without them):
 * - third-party players load only after the viewer clicks the consent button;
 * - times also shown in the viewer's own time zone when it differs from the event's. */
(function () {
  "use strict";

  function setUpConsent(box) {
    var button = box.querySelector(".stream-consent-button");
    var url = box.getAttribute("data-embed-url");
    if (!button || !url || url.indexOf("https://") !== 0) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var frame = document.createElement("iframe");
      frame.src = url;
      frame.title = box.getAttribute("data-embed-title") || "";
      frame.className = "stream-frame";
      frame.setAttribute("allow", "autoplay; fullscreen; picture-in-picture");
      frame.setAttribute("allowfullscreen", "");
      frame.setAttribute("referrerpolicy", "strict-origin-when-cross-origin");
      frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-presentation allow-popups");
      box.replaceChildren(frame);
      frame.focus();
    });
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
    var fmt = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", timeZone: viewerZone });
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

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".stream-consent").forEach(setUpConsent);
    showLocalTimes();
  });
}());
