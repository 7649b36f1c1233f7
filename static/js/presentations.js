// Slide upload: drag and drop or file picker, sent with XMLHttpRequest so the progress bar shows real
// upload progress. Without JavaScript the same form posts normally and the server answers with a redirect.
// Choosing or dropping a file only selects it (and checks name and size at once); the Upload button sends it.
// One gesture, one version: starting on both the choice and the button once stored the same file twice.
(function () {
  "use strict";

  // Texts come translated from the template (data-text-* on the form); English only as a fallback.
  var FALLBACK = {
    tooLarge: "The file is larger than allowed (%s MB).",
    wrongType: "This type of file is not accepted. Accepted are PDF, PowerPoint (.pptx, .ppt), OpenDocument (.odp) and Keynote (.key).",
    empty: "The file is empty.",
    choose: "Please choose a file first.",
    chosen: "Selected: %s. Press Upload to send it.",
    uploading: "Uploading: %s %",
    checking: "Checking the file …",
    done: "Version %s has been saved.",
    network: "The connection was interrupted. Please try again.",
    failed: "The upload failed (%s)."
  };

  function texts(form) {
    var t = {};
    Object.keys(FALLBACK).forEach(function (key) {
      var name = "text" + key.charAt(0).toUpperCase() + key.slice(1);
      t[key] = form.dataset[name] || FALLBACK[key];
    });
    return t;
  }

  function format(text, value) {
    return text.replace("%s", String(value));
  }

  function setup(form) {
    var t = texts(form);
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector(".drop-zone");
    var progressRow = form.querySelector(".upload-progress-row");
    var progress = form.querySelector("progress");
    var status = form.querySelector(".upload-status");
    var errorBox = form.querySelector(".upload-error");
    var button = form.querySelector("button[type=submit]");
    var maxBytes = parseInt(form.dataset.maxBytes, 10);
    var accepted = (form.dataset.accept || "").split(",");
    var busy = false;
    var dropped = null;  // a dropped file, where the browser cannot put it into the file field

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
      status.textContent = "";
      progressRow.hidden = true;
    }

    function clearMessages() {
      errorBox.textContent = "";
      errorBox.hidden = true;
      status.textContent = "";
    }

    function check(file) {
      var dot = file.name.lastIndexOf(".");
      var extension = dot >= 0 ? file.name.slice(dot).toLowerCase() : "";
      if (accepted.indexOf(extension) < 0) { return t.wrongType; }
      if (file.size === 0) { return t.empty; }
      if (file.size > maxBytes) { return format(t.tooLarge, Math.round(maxBytes / 1048576)); }
      return null;
    }

    function upload(file) {
      if (busy) { return; }
      clearMessages();
      var problem = check(file);
      if (problem) { showError(problem); return; }
      busy = true;
      button.disabled = true;
      progress.value = 0;
      progressRow.hidden = false;
      status.textContent = format(t.uploading, 0);

      var data = new FormData();
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.apiUrl);
      xhr.setRequestHeader("X-CSRFToken", form.querySelector("input[name=csrf_token]").value);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) { return; }
        var percent = Math.floor(event.loaded / event.total * 100);
        progress.value = percent;
        status.textContent = percent >= 100 ? t.checking : format(t.uploading, percent);
      });
      xhr.addEventListener("load", function () {
        busy = false;
        button.disabled = false;
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (ignored) { body = null; }
        if (xhr.status === 201 && body) {
          button.disabled = true;  // until the page shows the new version: a second press would store it again
          input.value = "";
          progress.value = 100;
          status.textContent = format(t.done, body.version);
          window.setTimeout(function () { window.location.reload(); }, 800);
          return;
        }
        showError(body && body.message ? body.message : format(t.failed, xhr.status));
      });
      xhr.addEventListener("error", function () {
        busy = false;
        button.disabled = false;
        showError(t.network);
      });
      xhr.send(data);
    }

    function select(file) {
      clearMessages();
      var problem = check(file);
      if (problem) { showError(problem); return; }
      status.textContent = format(t.chosen, file.name);
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = dropped || (input.files && input.files[0]);
      if (!file) { showError(t.choose); input.focus(); return; }
      dropped = null;
      upload(file);
    });
    input.addEventListener("change", function () {
      dropped = null;
      if (input.files && input.files.length) { select(input.files[0]); }
    });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("is-dragover");
      });
    });
    ["dragleave", "dragend"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("is-dragover"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("is-dragover");
      var files = event.dataTransfer && event.dataTransfer.files;
      if (!files || !files.length) { return; }
      dropped = files[0];
      try { input.files = files; dropped = null; } catch (ignored) { /* older browsers: keep `dropped` */ }
      select(files[0]);
    });
  }

  document.querySelectorAll("form.upload-form").forEach(setup);
})();
