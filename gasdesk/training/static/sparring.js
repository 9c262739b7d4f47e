// Sparring chat: keep the newest line in view and the cursor in the reply box after each htmx swap.
(function () {
  "use strict";
  function settle() {
    const log = document.getElementById("sparring-log");
    if (log) log.scrollTop = log.scrollHeight;
    const input = document.getElementById("sparring-text");
    if (input) input.focus();
  }
  document.addEventListener("DOMContentLoaded", settle);
  document.addEventListener("htmx:afterSettle", settle);
})();
