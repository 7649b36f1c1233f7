// /api/v1/docs: each operation's "Try it" form sends its request with fetch (same origin) and shows the answer.
// A cookie login sends the CSRF token of the page; an API token typed into the page is sent as a bearer token.
(function () {
  "use strict";

  var texts = document.getElementById("api-texts");
  var auth = document.getElementById("api-auth");
  if (!texts || !auth) { return; }
  auth.addEventListener("submit", function (event) { event.preventDefault(); });

  function show(form, status, body) {
    form.querySelector(".api-status").textContent = status;
    var pre = form.querySelector(".api-response");
    pre.textContent = body;
    pre.hidden = !body;
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function send(form) {
    var method = form.dataset.method;
    var headers = {"Accept": "application/json"};
    var token = auth.elements.token.value.trim();
    if (token) {
      headers.Authorization = "Bearer " + token;
    } else {
      headers["X-CSRFToken"] = auth.elements.csrf_token.value;
    }
    var options = {method: method, headers: headers, credentials: token ? "omit" : "same-origin"};
    if (form.dataset.bodyType === "application/json" && form.elements.body) {
      try { JSON.parse(form.elements.body.value); } catch (e) {
        show(form, texts.dataset.badJson, "");
        return;
      }
      headers["Content-Type"] = "application/json";
      options.body = form.elements.body.value;
    } else if (form.dataset.bodyType && form.elements.file) {
      var data = new FormData();
      if (form.elements.file.files[0]) { data.append("file", form.elements.file.files[0]); }
      options.body = data;
    }
    show(form, texts.dataset.sending, "");
    fetch(form.elements.url.value, options).then(function (response) {
      return response.text().then(function (body) {
        show(form, response.status + " " + response.statusText, pretty(body));
      });
    }).catch(function () {
      show(form, texts.dataset.failed, "");
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.api-try"), function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(form);
    });
  });
}());
