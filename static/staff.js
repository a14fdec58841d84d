// Staff pages: warn a minute before the server ends an idle session. The server decides
// (session_idle_minutes, checked on every request); this only tells the person in time.
(function () {
  "use strict";
  var root = document.documentElement;
  var minutes = parseInt(root.getAttribute("data-idle-minutes") || "", 10);
  var box = document.getElementById("idle-warning");
  if (!(minutes > 0) || !box || !root.hasAttribute("data-signed-in")) {
    return;
  }
  var warnAfter = Math.max(minutes * 60 - 60, 0) * 1000;
  window.setTimeout(function () {
    box.hidden = false;
  }, warnAfter);
  window.setTimeout(function () {
    window.location.assign("/login?ended=idle");
  }, minutes * 60 * 1000 + 2000);
})();
