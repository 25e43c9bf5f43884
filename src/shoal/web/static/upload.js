// The directory page's uploader: sends each chosen file as its own POST t=upload
// (multipart, field "file", name= the file's name), showing the bytes sent so far,
// then reloads the listing and says what it uploaded (kept over the reload in
// sessionStorage, with the number of progress events seen). Without JavaScript the
// form posts all the files itself.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var input = document.getElementById("upload-file");
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var text = document.getElementById("upload-text");
  var here = form.getAttribute("data-here");
  var KEY = "shoal-upload:" + here;
  var events = 0;

  function show(message, fraction) {
    box.className = "on";
    text.textContent = message;
    if (fraction !== null) { bar.value = Math.round(fraction * 100); }
  }

  function send(files, index) {
    if (index >= files.length) {
      var message = "Uploaded " + files.length + " file" + (files.length === 1 ? "" : "s") + ".";
      show(message, 1);
      try {
        window.sessionStorage.setItem(KEY, JSON.stringify({message: message, events: events}));
      } catch (e) { /* storage refused: the listing still shows the files */ }
      window.location.reload();
      return;
    }
    var file = files[index];
    var label = file.name + " (" + (index + 1) + " of " + files.length + ")";
    var data = new FormData();
    data.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", here + "?t=upload&name=" + encodeURIComponent(file.name));
    xhr.upload.onprogress = function (e) {
      events += 1;
      if (e.lengthComputable) {
        show("Uploading " + label + ": " + Math.floor(100 * e.loaded / e.total) + "%", e.loaded / e.total);
      }
    };
    xhr.upload.onload = function () { show("Storing " + label + " in the grid...", 1); };
    xhr.onload = function () {
      if (xhr.status >= 200 && xhr.status < 300) {
        send(files, index + 1);
      } else {
        show("Upload of " + file.name + " failed (" + xhr.status + "): " + xhr.responseText, null);
        form.setAttribute("data-error", String(xhr.status));
      }
    };
    xhr.onerror = function () {
      show("Upload of " + file.name + " failed: the node did not answer.", null);
      form.setAttribute("data-error", "network");
    };
    show("Uploading " + label + ": 0%", 0);
    xhr.send(data);
  }

  try {
    var last = window.sessionStorage.getItem(KEY);
    if (last) {
      window.sessionStorage.removeItem(KEY);
      last = JSON.parse(last);
      show(last.message, 1);
      form.setAttribute("data-progress-events", String(last.events));
    }
  } catch (e) { /* nothing to say */ }

  form.addEventListener("submit", function (event) {
    if (!input.files || input.files.length === 0) { return; }
    event.preventDefault();
    document.getElementById("upload-submit").disabled = true;
    send(input.files, 0);
  });
}());
