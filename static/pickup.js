// Sealpost pickup helper. Optional: every page works without it.
//
// The notification link ends in "#k=<access code>". The fragment never reaches the server, so
// this script moves the code into the forms that need it (field "k") and removes it from the
// address bar. It is kept in sessionStorage for this tab only, so the code and verification
// steps (which load new pages) can still fill it in; closing the tab forgets it.
(function () {
  "use strict";
  var CODE = /^[A-Za-z0-9_-]{22}$/;
  var page = document.documentElement.getAttribute("data-pickup");
  if (!page) {
    return;
  }
  var storageKey = "sealpost:k:" + page;
  var secret = null;

  var match = /(?:^#|&)k=([^&]*)/.exec(window.location.hash || "");
  if (match && CODE.test(match[1])) {
    secret = match[1];
    try {
      window.sessionStorage.setItem(storageKey, secret);
    } catch (e) {
      // Storage may be disabled; the code is still used on this page.
    }
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  } else {
    try {
      secret = window.sessionStorage.getItem(storageKey);
    } catch (e) {
      secret = null;
    }
    if (secret && !CODE.test(secret)) {
      secret = null;
    }
  }
  if (!secret) {
    return;
  }

  function fill() {
    var inputs = document.querySelectorAll("input[name='k']");
    for (var i = 0; i < inputs.length; i++) {
      var input = inputs[i];
      if (input.type === "hidden") {
        if (!input.value) {
          input.value = secret;
        }
        continue;
      }
      if (input.value) {
        continue;
      }
      input.value = secret;
      var wrapper = input.closest(".secret-field");
      if (wrapper) {
        wrapper.hidden = true;
        var note = document.getElementById(wrapper.getAttribute("data-filled-note"));
        if (note) {
          note.hidden = false;
        }
      }
    }
    var shows = document.querySelectorAll("[data-show-field]");
    for (var j = 0; j < shows.length; j++) {
      shows[j].addEventListener("click", function (event) {
        var field = document.getElementById(event.currentTarget.getAttribute("data-show-field"));
        if (field) {
          field.hidden = false;
          var input = field.querySelector("input");
          if (input) {
            input.focus();
          }
        }
        event.currentTarget.parentNode.hidden = true;
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fill);
  } else {
    fill();
  }
})();
