// The organisers' attendance dashboard: draws the charts from the tables on the page (the tables are the
// accessible copy of every chart) and refreshes both every 30 seconds from live.json while the page is open.
(function () {
  "use strict";

  var root = document.getElementById("attendance");
  if (!root || typeof window.Chart === "undefined") { return; }
  var zone = root.dataset.zone || "Europe/Berlin";
  var timeFormat = new Intl.DateTimeFormat(document.documentElement.lang || "de",
    { hour: "2-digit", minute: "2-digit", timeZone: zone });
  var charts = {};

  function rowsOf(tableId) {
    return Array.prototype.slice.call(document.querySelectorAll("#" + tableId + " tbody tr"));
  }

  function cellNumber(row, selector) {
    var cell = row.querySelector(selector);
    return cell ? Number(cell.textContent) : 0;
  }

  function timelineFromTable() {
    return rowsOf("table-timeline").map(function (row) {
      return { at: row.dataset.at, people: cellNumber(row, "td") };
    });
  }

  function sessionsFromTable() {
    return rowsOf("table-sessions").map(function (row) {
      return { title: row.querySelector("th").textContent, unique_attendees: cellNumber(row, ".unique"),
               peak_concurrent: cellNumber(row, ".peak") };
    });
  }

  function draw(name, canvasId, config) {
    if (charts[name]) {
      charts[name].data = config.data;
      charts[name].update("none");
      return;
    }
    var canvas = document.getElementById(canvasId);
    if (!canvas) { return; }
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false,
                                     scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
                                   config.options || {});
    charts[name] = new window.Chart(canvas, config);
  }

  function render(timeline, sessions) {
    draw("timeline", "chart-timeline", { type: "line", data: {
      labels: timeline.map(function (p) { return timeFormat.format(new Date(p.at)); }),
      datasets: [{ label: root.dataset.labelPeople, data: timeline.map(function (p) { return p.people; }),
                   borderColor: "#1f5f99", backgroundColor: "rgba(31,95,153,.15)", fill: true, pointRadius: 0 }]
    } });
    draw("sessions", "chart-sessions", { type: "bar", data: {
      labels: sessions.map(function (s) { return s.title; }),
      datasets: [
        { label: root.dataset.labelUnique, data: sessions.map(function (s) { return s.unique_attendees; }),
          backgroundColor: "#1f5f99" },
        { label: root.dataset.labelPeak, data: sessions.map(function (s) { return s.peak_concurrent; }),
          backgroundColor: "#b8860b" }
      ]
    } });
  }

  function setText(element, text) {
    if (element && element.textContent !== String(text)) { element.textContent = String(text); }
  }

  function update(data) {
    setText(document.getElementById("figure-registered"), data.registered);
    setText(document.getElementById("figure-attended"), data.attended);
    data.rooms.forEach(function (room) {
      var row = document.querySelector('#live-rooms tr[data-room="' + room.room + '"]');
      if (row) {
        setText(row.querySelector(".online"), room.online);
        setText(row.querySelector(".people"), room.people.join(", ") +
          (room.more ? " " + root.dataset.labelMore.replace("{n}", String(room.more)) : ""));
      }
    });
    setText(document.getElementById("figure-online"), data.online);
    data.sessions.forEach(function (s) {
      var row = document.querySelector('#table-sessions tr[data-session="' + s.id + '"]');
      if (row) {
        setText(row.querySelector(".unique"), s.unique_attendees);
        setText(row.querySelector(".peak"), s.peak_concurrent);
        setText(row.querySelector(".average"), s.average_minutes);
        setText(row.querySelector(".chat"), s.chat_messages);
        setText(row.querySelector(".questions"), s.questions);
        setText(row.querySelector(".reactions"), s.reactions);
        setText(row.querySelector(".downloads"), s.slide_downloads);
      }
    });
    var body = document.querySelector("#table-timeline tbody");
    if (body) {
      body.textContent = "";
      data.timeline.forEach(function (point) {
        var tr = document.createElement("tr");
        tr.dataset.at = point.at;
        var th = document.createElement("th");
        th.scope = "row";
        th.textContent = timeFormat.format(new Date(point.at));
        var td = document.createElement("td");
        td.textContent = String(point.people);
        tr.appendChild(th);
        tr.appendChild(td);
        body.appendChild(tr);
      });
    }
    render(data.timeline, data.sessions.map(function (s) {
      return { title: s.title, unique_attendees: s.unique_attendees, peak_concurrent: s.peak_concurrent };
    }));
    root.dataset.updated = String(Date.now());
  }

  function poll() {
    fetch(root.dataset.liveUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { update(data); } })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  render(timelineFromTable(), sessionsFromTable());
  var seconds = Number(root.dataset.pollSeconds || 30);
  window.setInterval(poll, seconds * 1000);
})();
