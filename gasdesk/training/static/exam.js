// The exam countdown: the server's seconds left tick down here; at zero the form is handed in by itself (the
// server refuses answers after the deadline anyway and closes the attempt).
(function () {
  "use strict";
  const clock = document.getElementById("exam-countdown");
  const form = document.getElementById("exam-form");
  if (!clock || !form) return;
  const end = Date.now() + Number(clock.dataset.seconds || 0) * 1000;
  let sent = false;
  form.addEventListener("submit", function () { sent = true; });
  function tick() {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    clock.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    if (left <= 60) clock.closest(".exam-timer").classList.add("urgent");
    if (left === 0 && !sent) {
      sent = true;
      form.submit();
      return;
    }
    if (left > 0) window.setTimeout(tick, 1000);
  }
  tick();
})();
