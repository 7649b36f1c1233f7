/* Live layer client: chat panels, Q&A, presence, reactions, announcements and agenda pushes.
 * User text is only ever inserted with textContent; links are built as <a> nodes for http(s) URLs only. */
(function () {
  "use strict";

  /* Forms that delete or ban ask first (data-confirm; with data-confirm-kind only when that kind is chosen).
   * Without script they post directly, as before. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) { return; }
    var kind = form.getAttribute("data-confirm-kind");
    var chosen = form.querySelector("[name=kind]");
    if (kind && (!chosen || chosen.value !== kind)) { return; }
    if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
  });

  if (typeof window.io !== "function") { return; }

  var body = document.body;
  var eventSlug = body.getAttribute("data-event-slug");
  var panels = Array.prototype.slice.call(document.querySelectorAll("[data-live-room]"));
  var banner = document.getElementById("announcement-banner");
  if (!eventSlug && panels.length === 0) { return; }

  // tryAllTransports: long-polling when a websocket cannot be opened (a proxy that blocks them, or a server
  // that turned websockets off because it could not limit their messages; see conference/serving/limits.py).
  var socket = window.io({ transports: ["websocket", "polling"], tryAllTransports: true, withCredentials: true });
  var rooms = {};           // room name -> panel state
  var outbox = {};          // client_id -> {room, text, kind}
  var hasConnected = false;
  var URL_PATTERN = /https?:\/\/[^\s<>"']+/g;

  var pageTexts = document.getElementById("page-texts");

  /* Translated texts come from data-label-* attributes (the panel's, then base.html's #page-texts). */
  function label(panel, name, fallback) {
    return (panel && panel.getAttribute("data-label-" + name)) ||
      (pageTexts && pageTexts.getAttribute("data-label-" + name)) || fallback;
  }

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  /* Text with http(s) links made clickable; everything else stays text. */
  function appendLinkified(parent, text) {
    var last = 0;
    text.replace(URL_PATTERN, function (match, offset) {
      var url = match.replace(/[).,;:!?]+$/, "");
      parent.appendChild(document.createTextNode(text.slice(last, offset)));
      var safe = null;
      try {
        var parsed = new URL(url);
        if (parsed.protocol === "http:" || parsed.protocol === "https:") { safe = parsed.href; }
      } catch (e) { safe = null; }
      if (safe) {
        var a = document.createElement("a");
        a.href = safe;
        a.rel = "noopener noreferrer nofollow ugc";
        a.textContent = url;
        parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(url));
      }
      last = offset + url.length;
      return match;
    });
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  /* One clock per language: the server writes 24-hour times (HH:mm) in German and English, so does the page. */
  function formatTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ""; }
    return d.toLocaleTimeString(document.documentElement.lang || undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }

  function setStatus(state, text, kind) {
    var el = state.panel.querySelector("[data-live-status]");
    if (!el) { return; }
    el.textContent = text;
    el.className = "live-status live-status-" + kind;
  }

  function setAllStatus(name, kind) {
    Object.keys(rooms).forEach(function (room) {
      var state = rooms[room];
      setStatus(state, label(state.panel, name, name), kind);
    });
  }

  function showError(state, selector, text) {
    var el = state.panel.querySelector(selector);
    if (!el) { return; }
    el.textContent = text || "";
    el.hidden = !text;
  }

  /* --- chat --------------------------------------------------------------------------------------- */

  function renderMessage(state, message) {
    if (state.ids[message.id]) { return; }
    state.ids[message.id] = true;
    if (message.id > state.lastId) { state.lastId = message.id; }
    var li = document.createElement("li");
    li.className = "chat-message";
    li.setAttribute("data-id", String(message.id));
    var author = document.createElement("span");
    author.className = "chat-author";
    author.textContent = message.author.name || label(null, "deleted-account", "deleted account");
    li.appendChild(author);
    if (message.author.role && message.author.role !== "attendee") {
      var badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = label(state.panel, "role-" + message.author.role, message.author.role);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(badge);
    }
    var time = document.createElement("time");
    time.dateTime = message.created_at;
    time.textContent = formatTime(message.created_at);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(time);
    var text = document.createElement("p");
    text.className = "chat-text";
    appendLinkified(text, message.text);
    li.appendChild(text);
    var actions = document.createElement("span");
    actions.className = "chat-actions";
    if (state.isModerator && message.author.id !== state.userId) {
      // Not on one's own messages; delete and ban ask first; mute for a chosen time; the answer is shown.
      actions.appendChild(actionButton(label(state.panel, "delete", "Delete"), function () {
        if (!window.confirm(label(state.panel, "confirm-delete", "Delete this message for everyone?"))) { return; }
        socket.emit("chat:delete", { message_id: message.id }, function (ack) {
          moderationFeedback(state, ack, label(state.panel, "done-delete", "The message was deleted."));
        });
      }, "delete"));
      var length = document.createElement("select");
      length.className = "mute-length";
      length.setAttribute("aria-label", label(state.panel, "mute-length", "Mute for"));
      muteChoices(state.panel).forEach(function (choice) {
        var option = document.createElement("option");
        option.value = String(choice[0]);
        option.textContent = choice[1];
        length.appendChild(option);
      });
      actions.appendChild(length);
      actions.appendChild(actionButton(label(state.panel, "mute", "Mute"), function () {
        var chosen = length.options[length.selectedIndex];
        socket.emit("mod:mute", { room: state.room, user_id: message.author.id, minutes: Number(chosen.value) },
          function (ack) {
            moderationFeedback(state, ack, label(state.panel, "done-mute", "%1 is muted for %2.")
              .replace("%1", message.author.name || "").replace("%2", chosen.textContent));
          });
      }, "mute"));
      actions.appendChild(actionButton(label(state.panel, "ban", "Ban"), function () {
        var question = label(state.panel, "confirm-ban", "Ban %s from all live rooms of this event?");
        if (!window.confirm(question.replace("%s", message.author.name || ""))) { return; }
        socket.emit("mod:ban", { room: state.room, user_id: message.author.id }, function (ack) {
          moderationFeedback(state, ack, label(state.panel, "done-ban", "%s is banned.")
            .replace("%s", message.author.name || ""));
        });
      }, "ban"));
    } else if (message.author.id !== state.userId) {
      actions.appendChild(actionButton(label(state.panel, "report", "Report"), function (button) {
        socket.emit("chat:report", { message_id: message.id }, function (ack) {
          if (ack && ack.ok) { button.textContent = label(state.panel, "reported", "Reported"); button.disabled = true; }
        });
      }));
    }
    li.appendChild(actions);
    // Keep id order even when broadcasts arrive out of order.
    var list = state.list;
    var next = null;
    for (var node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.getAttribute("data-id")) < message.id) { break; }
      next = node;
    }
    list.insertBefore(li, next);
    while (list.children.length > 500) { list.removeChild(list.firstElementChild); }
    if (state.stickToBottom) { list.scrollTop = list.scrollHeight; }
  }

  /* New messages from others are announced as a count, at most every few seconds, so a screen reader is not
   * flooded by a busy chat (the list itself is not a live region). */
  function announceNew(state, message) {
    var region = state.panel.querySelector("[data-live-announce]");
    if (!region || message.author.id === state.userId) { return; }
    state.unannounced = (state.unannounced || 0) + 1;
    if (state.announceTimer) { return; }
    state.announceTimer = window.setTimeout(function () {
      var n = state.unannounced;
      state.unannounced = 0;
      state.announceTimer = null;
      region.textContent = n === 1 ? (region.getAttribute("data-label-one-new") || "1 new message")
        : (region.getAttribute("data-label-many-new") || "%s new messages").replace("%s", String(n));
    }, 4000);
  }

  function muteChoices(panel) {
    try { return JSON.parse(panel.getAttribute("data-mute-choices")) || []; } catch (e) { return [[15, "15 min"]]; }
  }

  function moderationFeedback(state, ack, success) {
    var el = state.panel.querySelector("[data-live-mod-feedback]");
    if (!el) { return; }
    var ok = Boolean(ack && ack.ok);
    el.textContent = ok ? success : ((ack && ack.message) || label(state.panel, "failed", "Not sent:"));
    el.className = "live-mod-feedback " + (ok ? "flash flash-success" : "flash flash-error");
    el.hidden = false;
  }

  function actionButton(text, onClick, action) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link-button chat-action";
    if (action) { button.setAttribute("data-action", action); }
    button.textContent = text;
    button.addEventListener("click", function () { onClick(button); });
    return button;
  }

  function removeMessage(state, id) {
    var li = state.list.querySelector('[data-id="' + Number(id) + '"]');
    if (li) { li.parentNode.removeChild(li); }
  }

  function fetchHistory(state) {
    socket.emit("chat:history", { room: state.room, after_id: state.lastId }, function (ack) {
      if (!ack || !ack.ok) { return; }
      // Deleted by a moderator while we were away (we missed their chat:deleted).
      (ack.deleted || []).forEach(function (id) { removeMessage(state, id); });
      ack.messages.forEach(function (m) { renderMessage(state, m); });
      if (ack.has_more) { fetchHistory(state); }
    });
  }

  function sendChat(state, clientId, text) {
    outbox[clientId] = { room: state.room, text: text, kind: "chat" };
    socket.timeout(8000).emit("chat:send", { room: state.room, text: text, client_id: clientId }, function (err, ack) {
      if (err) { return; } // no answer: stays in the outbox, resent with the same client_id after reconnecting
      delete outbox[clientId];
      if (ack && ack.ok) {
        renderMessage(state, ack.message);
        showError(state, "[data-live-error]", "");
      } else if (ack) {
        showError(state, "[data-live-error]", label(state.panel, "failed", "Not sent:") + " " + ack.message);
      }
    });
  }

  function resendOutbox() {
    Object.keys(outbox).forEach(function (clientId) {
      var item = outbox[clientId];
      var state = rooms[item.room];
      if (state && item.kind === "chat") { sendChat(state, clientId, item.text); }
    });
  }

  /* --- Q&A ------------------------------------------------------------------------------------------ */

  function renderQuestions(state) {
    var list = state.panel.querySelector("[data-live-questions]");
    if (!list) { return; }
    var questions = Object.keys(state.questions).map(function (id) { return state.questions[id]; });
    questions.sort(function (a, b) { return (b.votes - a.votes) || (a.id - b.id); });
    // The list is rebuilt whenever any question changes (someone else's vote, a new question): a keyboard user
    // whose focus is on one of its buttons keeps it on the same question's button (or another of its buttons).
    var focused = document.activeElement;
    var focusedItem = focused && list.contains(focused) ? focused.closest("li[data-question-id]") : null;
    var focus = focusedItem ? { id: focusedItem.getAttribute("data-question-id"),
                                action: focused.getAttribute("data-action") } : null;
    while (list.firstChild) { list.removeChild(list.firstChild); }
    questions.forEach(function (q) {
      if (q.is_hidden && !state.isModerator) { return; }  // removed by the moderators
      var li = document.createElement("li");
      li.setAttribute("data-question-id", String(q.id));
      li.className = "qa-question" + (q.is_answered ? " is-answered" : "") + (q.is_hidden ? " is-hidden" : "");
      var text = document.createElement("p");
      text.className = "qa-text";
      appendLinkified(text, q.text);
      li.appendChild(text);
      var meta = document.createElement("p");
      meta.className = "qa-meta";
      meta.textContent = (q.votes === 1 ? label(state.panel, "one-vote", "1 vote") : q.votes + " " + label(state.panel, "votes", "votes")) +
        " · " + (q.author.name || label(null, "deleted-account", "deleted account")) +
        (q.is_answered ? " · " + label(state.panel, "answered", "Answered") : "") +
        (q.is_hidden ? " · " + label(state.panel, "hidden", "Hidden") : "");
      li.appendChild(meta);
      if (q.answer) {
        var answer = document.createElement("p");
        answer.className = "qa-answer";
        answer.textContent = q.answer;
        li.appendChild(answer);
      }
      if (!q.is_hidden && !q.voted && q.author.id !== state.userId) {
        li.appendChild(actionButton(label(state.panel, "vote", "Vote"), function (button) {
          button.disabled = true;
          socket.emit("qa:vote", { question_id: q.id }, function (ack) {
            if (ack && ack.ok) { q.voted = true; state.questions[q.id] = Object.assign(q, ack.question, { voted: true }); renderQuestions(state); }
            else { button.disabled = false; }
          });
        }, "vote"));
      }
      if (state.isModerator) {
        var hide = q.is_hidden ? "unhide" : "hide";
        li.appendChild(actionButton(label(state.panel, hide, hide), function () {
          socket.emit("qa:" + hide, { question_id: q.id }, function (ack) { if (ack && ack.ok) { mergeQuestion(state, ack.question); } });
        }, hide));
      } else if (q.author.id !== state.userId) {
        var report = actionButton(label(state.panel, q.reported ? "reported" : "report", "Report"), function (button) {
          button.disabled = true;
          socket.emit("qa:report", { question_id: q.id }, function (ack) {
            if (ack && ack.ok) { q.reported = true; button.textContent = label(state.panel, "reported", "Reported"); }
            else { button.disabled = false; }
          });
        }, "report");
        report.disabled = !!q.reported;
        li.appendChild(report);
      }
      if (state.isModerator && !q.is_answered && !q.is_hidden) {
        var form = document.createElement("form");
        form.className = "qa-answer-form";
        var input = document.createElement("input");
        input.type = "text";
        input.maxLength = 4000;
        input.setAttribute("aria-label", label(state.panel, "answer", "Answer"));
        input.placeholder = label(state.panel, "answer", "Answer");
        var submit = document.createElement("button");
        submit.type = "submit";
        submit.className = "button button-small";
        submit.textContent = label(state.panel, "mark-answered", "Mark answered");
        form.appendChild(input);
        form.appendChild(submit);
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          socket.emit("qa:answer", { question_id: q.id, answer: input.value || null }, function () {});
        });
        li.appendChild(form);
      }
      list.appendChild(li);
    });
    if (focus) {
      var item = list.querySelector('li[data-question-id="' + Number(focus.id) + '"]');
      var target = item && ((focus.action && item.querySelector('[data-action="' + CSS.escape(focus.action) + '"]:not([disabled])')) ||
                            item.querySelector("button:not([disabled])"));
      if (target) { target.focus(); }
    }
  }

  function mergeQuestion(state, q) {
    var old = state.questions[q.id];
    if (old && old.voted) { q.voted = true; }
    if (old && old.reported) { q.reported = true; }
    state.questions[q.id] = q;
    renderQuestions(state);
  }

  /* --- rooms ---------------------------------------------------------------------------------------- */

  function join(state) {
    socket.emit("join", { room: state.room }, function (ack) {
      if (!ack || !ack.ok) {
        setStatus(state, (ack && ack.message) || "", "error");
        return;
      }
      state.isModerator = !!ack.is_moderator;
      state.userId = ack.user ? ack.user.id : null;
      setStatus(state, label(state.panel, "connected", "Connected"), "ok");
      setOnline(state, ack.online);
      var who = state.panel.querySelector("[data-live-who]");
      if (who) { who.hidden = !state.isModerator; }
      if (ack.history) {
        if (state.lastId === 0) { ack.history.forEach(function (m) { renderMessage(state, m); }); }
        else { fetchHistory(state); }  // after a reconnect: everything after the last message seen
      }
      setSlowMode(state, ack.slow_mode_seconds || 0);
      if (ack.announcement) { showAnnouncement(ack.announcement); }
      if (state.panel.querySelector("[data-live-questions]")) {
        socket.emit("qa:list", { room: state.room }, function (qa) {
          if (!qa || !qa.ok) { return; }
          state.questions = {};
          qa.questions.forEach(function (q) { state.questions[q.id] = q; });
          renderQuestions(state);
        });
      }
    });
  }

  function setOnline(state, count) {
    var el = state.panel.querySelector("[data-live-online]");
    if (el) { el.textContent = String(count); }
  }

  function setSlowMode(state, seconds) {
    var el = state.panel.querySelector("[data-live-slow]");
    if (!el) { return; }
    el.hidden = !seconds;
    el.textContent = seconds ? label(state.panel, "slow", "Slow mode: %s s").replace("%s", String(seconds)) : "";
  }

  function setupPanel(panel) {
    var state = {
      panel: panel, room: panel.getAttribute("data-live-room"), list: panel.querySelector("[data-live-messages]"),
      ids: {}, lastId: 0, isModerator: false, userId: null, questions: {}, stickToBottom: true
    };
    rooms[state.room] = state;
    state.list.addEventListener("scroll", function () {
      state.stickToBottom = state.list.scrollTop + state.list.clientHeight >= state.list.scrollHeight - 8;
    });
    var form = panel.querySelector("[data-live-chat-form]");
    if (form) {
      var textarea = form.querySelector("textarea");
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var text = textarea.value.trim();
        if (!text) { return; }
        textarea.value = "";
        sendChat(state, newClientId(), text);
      });
      textarea.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
        }
      });
    }
    var qaForm = panel.querySelector("[data-live-qa-form]");
    if (qaForm) {
      qaForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var area = qaForm.querySelector("textarea");
        var text = area.value.trim();
        if (!text) { return; }
        socket.emit("qa:ask", { room: state.room, text: text, client_id: newClientId() }, function (ack) {
          if (ack && ack.ok) { area.value = ""; mergeQuestion(state, ack.question); showError(state, "[data-live-qa-error]", ""); }
          else if (ack) { showError(state, "[data-live-qa-error]", ack.message); }
        });
      });
    }
    Array.prototype.forEach.call(panel.querySelectorAll("[data-live-reaction]"), function (button) {
      button.addEventListener("click", function () {
        socket.emit("react", { room: state.room, reaction: button.getAttribute("data-live-reaction") }, function () {});
      });
    });
    var who = panel.querySelector("[data-live-who]");
    if (who) {
      who.addEventListener("click", function () {
        socket.emit("presence:who", { room: state.room }, function (ack) {
          var list = panel.querySelector("[data-live-who-list]");
          if (!ack || !ack.ok || !list) { return; }
          while (list.firstChild) { list.removeChild(list.firstChild); }
          ack.users.forEach(function (u) {
            var li = document.createElement("li");
            li.textContent = u.name + " (" + label(panel, "role-" + u.role, u.role) + ")";
            list.appendChild(li);
          });
          list.hidden = false;
        });
      });
    }
  }

  /* --- announcements and agenda --------------------------------------------------------------------- */

  /* A dismissed announcement stays hidden for this tab (sessionStorage), also after a reload; a newer one shows. */
  function dismissedAnnouncements() {
    try { return JSON.parse(window.sessionStorage.getItem("dismissed-announcements") || "[]"); } catch (e) { return []; }
  }

  function showAnnouncement(announcement) {
    if (!banner || dismissedAnnouncements().indexOf(announcement.id) !== -1) { return; }
    var text = document.createElement("span");
    text.className = "announcement-text";
    text.textContent = announcement.text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "announcement-dismiss";
    var texts = document.getElementById("page-texts");
    close.textContent = (texts && texts.getAttribute("data-label-dismiss")) || "Dismiss";
    close.addEventListener("click", function () {
      var dismissed = dismissedAnnouncements();
      dismissed.push(announcement.id);
      try { window.sessionStorage.setItem("dismissed-announcements", JSON.stringify(dismissed.slice(-20))); } catch (e) { /* private mode */ }
      banner.hidden = true;
      banner.replaceChildren();
      var main = document.getElementById("main");
      if (main) { main.focus(); }
    });
    banner.replaceChildren(text, close);
    banner.hidden = false;
  }

  function refreshLiveRegions() {
    var targets = document.querySelectorAll("[data-live-refresh]");
    if (targets.length === 0) {
      var notice = document.getElementById("agenda-changed-notice");
      if (notice) { return; }
      notice = document.createElement("p");
      notice.id = "agenda-changed-notice";
      notice.className = "flash flash-info";
      notice.setAttribute("role", "status");
      var first = panels[0];
      notice.textContent = label(first, "agenda", "The agenda has changed.") + " ";
      var reload = actionButton(label(first, "reload", "Reload page"), function () { window.location.reload(); });
      notice.appendChild(reload);
      var main = document.getElementById("main");
      if (main) { main.insertBefore(notice, main.firstChild); }
      return;
    }
    // Same-origin HTML rendered (and escaped) by the server: swap the marked regions in place.
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        Array.prototype.forEach.call(targets, function (target) {
          var key = target.getAttribute("data-live-refresh");
          var replacement = fresh.querySelector('[data-live-refresh="' + key.replace(/"/g, "") + '"]');
          if (replacement) { target.replaceWith(document.importNode(replacement, true)); }
        });
      })
      .catch(function () {});
  }

  /* --- wiring ------------------------------------------------------------------------------------------- */

  panels.forEach(setupPanel);
  if (eventSlug && panels.length === 0) {
    rooms["event:" + eventSlug] = { panel: document.body, room: "event:" + eventSlug, notice: true };
  }

  socket.on("connect", function () {
    Object.keys(rooms).forEach(function (room) {
      var state = rooms[room];
      if (state.notice) { socket.emit("join", { room: room }, function (ack) { if (ack && ack.ok && ack.announcement) { showAnnouncement(ack.announcement); } }); }
      else { join(state); }
    });
    if (hasConnected) { resendOutbox(); }
    hasConnected = true;
  });
  socket.on("disconnect", function () {
    Object.keys(rooms).forEach(function (room) { if (!rooms[room].notice) { setStatus(rooms[room], label(rooms[room].panel, "reconnecting", "Reconnecting…"), "warn"); } });
  });
  socket.on("connect_error", function () {
    Object.keys(rooms).forEach(function (room) { if (!rooms[room].notice) { setStatus(rooms[room], label(rooms[room].panel, "reconnecting", "Reconnecting…"), "warn"); } });
  });
  function receive(s, m) {
    var known = s.ids[m.id];
    renderMessage(s, m);
    if (!known) { announceNew(s, m); }
  }
  socket.on("chat:message", function (m) { var s = rooms[m.room]; if (s && s.list) { receive(s, m); } });
  socket.on("chat:messages", function (batch) {
    var s = rooms[batch.room];
    if (s && s.list) { batch.messages.forEach(function (m) { receive(s, m); }); }
  });
  socket.on("chat:deleted", function (d) {
    var s = rooms[d.room];
    if (s && s.list) { removeMessage(s, d.id); }
  });
  socket.on("chat:settings", function (d) { var s = rooms[d.room]; if (s && s.list) { setSlowMode(s, d.slow_mode_seconds); } });
  socket.on("presence", function (p) { var s = rooms[p.room]; if (s && s.list) { setOnline(s, p.online); } });
  socket.on("reactions", function (r) {
    var s = rooms[r.room];
    if (!s || !s.list) { return; }
    Object.keys(r.counts).forEach(function (key) {
      var el = s.panel.querySelector('[data-live-reaction-count="' + key.replace(/[^a-z_]/g, "") + '"]');
      if (!el) { return; }
      el.textContent = "+" + r.counts[key];
      window.setTimeout(function () { el.textContent = ""; }, 3000);
    });
  });
  socket.on("qa:question", function (q) { var s = rooms[q.room]; if (s && s.list) { mergeQuestion(s, q); } });
  socket.on("qa:updated", function (q) { var s = rooms[q.room]; if (s && s.list) { mergeQuestion(s, q); } });
  socket.on("qa:restored", function (q) { var s = rooms[q.room]; if (s && s.list) { mergeQuestion(s, q); } });
  socket.on("qa:hidden", function (d) {
    var s = rooms[d.room], q = s && s.questions[d.id];
    if (q) { q.is_hidden = true; renderQuestions(s); }  // kept (with "voted") in case it is restored
  });
  socket.on("announcement", showAnnouncement);
  socket.on("agenda:changed", function () {
    document.dispatchEvent(new CustomEvent("conference:agenda-changed"));
    refreshLiveRegions();
  });
  socket.on("room:removed", function (d) {
    var s = rooms[d.room];
    if (!s || s.notice) { return; }
    setStatus(s, label(s.panel, "removed", "Removed"), "error");
    var form = s.panel.querySelector("[data-live-chat-form]");
    if (form) { form.hidden = true; }
    delete rooms[d.room];
  });
  socket.on("live:role", function (d) {
    Object.keys(rooms).forEach(function (room) { if (!rooms[room].notice) { rooms[room].isModerator = !!d.is_moderator; } });
  });
}());
