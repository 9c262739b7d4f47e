// The emergency board and event page: live over the page's one staff socket (bell.js re-dispatches each
// "emergency" frame as a "gasdesk:emergency" DOM event), and the elapsed times tick every second.
(function () {
  "use strict";
  let pending = null;

  function fmt(s) {
    if (s < 60) return s + " 秒";
    if (s < 3600) return Math.floor(s / 60) + " 分 " + (s % 60) + " 秒";
    return Math.floor(s / 3600) + " 小时 " + Math.floor((s % 3600) / 60) + " 分";
  }

  function tick() {
    for (const el of document.querySelectorAll(".emg-elapsed[data-since]")) {
      const since = Date.parse(el.dataset.since);
      if (!Number.isNaN(since)) el.textContent = fmt(Math.max(0, Math.floor((Date.now() - since) / 1000)));
    }
  }

  async function reload() {
    pending = null;
    // Someone is writing a summary or a reason: refresh once they are done (a reload would lose it).
    const typing = [...document.querySelectorAll(".emg-event textarea, .emg-event input[name=reason]")]
      .some((el) => el.value.trim() !== "");
    if (typing) { pending = setTimeout(reload, 3000); return; }
    const list = document.getElementById("emergency-events");
    if (list) {
      const r = await fetch("/emergency/board", { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!r.ok) return;
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.getElementById("emergency-events");
      if (fresh) list.replaceWith(fresh);
      window.gasdeskEmergency.reloads += 1;
    } else {
      // the event's own page: reload it (the server renders the acknowledgement and times)
      window.location.reload();
    }
    tick();
  }

  document.addEventListener("gasdesk:emergency", (e) => {
    const detail = document.getElementById("emergency-detail");
    if (detail && !detail.querySelector('[data-event="' + e.detail.event_id + '"]')) return;
    // a burst of frames (open + first step) refreshes once
    if (pending === null) pending = setTimeout(reload, 150);
  });
  setInterval(tick, 1000);
  window.gasdeskEmergency = { reload, frames: 0, reloads: 0 };
  document.addEventListener("gasdesk:emergency", () => { window.gasdeskEmergency.frames += 1; });
})();
