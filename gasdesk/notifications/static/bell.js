/* The notification bell in the header of every staff page (base.html): unread badge, a menu of the latest
 * notifications, mark one / all read, and live pushes over /ws/staff. Urgent ones (a gas leak) raise an alert
 * that stays until dismissed, with a sound. REST: /api/v1/notifications. The socket is the shared client's
 * (web/static/socket-client.js); this file is the bell's UI. Plain JS, no build step. */
(function () {
  "use strict";

  const bell = document.getElementById("notify-bell");
  if (!bell) return;
  const $ = (id) => document.getElementById(id);
  const toggle = $("notify-toggle");
  const menu = $("notify-menu");
  const list = $("notify-list");
  const badge = $("notify-count");
  const alerts = $("alert-toasts");
  const MENU_SIZE = 10;

  const S = { items: [], unread: 0 };

  const { h, timeFmt } = window.gasdeskDom;  // web/static/app.js

  async function api(method, path) {
    const res = await fetch(path, {
      method, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": window.gasdeskCsrfToken ? window.gasdeskCsrfToken() : "" },
    });
    if (!res.ok) throw new Error("请求失败（" + res.status + "）");
    return res.json();
  }

  // ------------------------------------------------------------------ badge and menu

  function setUnread(n) {
    S.unread = Math.max(0, n | 0);
    badge.textContent = S.unread > 99 ? "99+" : String(S.unread);
    badge.hidden = S.unread === 0;
    toggle.setAttribute("aria-label", S.unread ? "通知（" + S.unread + " 条未读）" : "通知");
    bell.classList.toggle("has-unread", S.unread > 0);
  }

  function render() {
    list.replaceChildren();
    if (!S.items.length) { list.append(h("li", { class: "notify-empty", text: "暂无通知" })); return; }
    for (const n of S.items.slice(0, MENU_SIZE)) {
      list.append(h("li", {
        class: "notify-item" + (n.read ? "" : " unread") + (n.urgent ? " urgent" : ""),
        dataset: { id: n.id }, tabindex: "0", role: "button",
        onclick: () => openItem(n), onkeydown: (e) => { if (e.key === "Enter") openItem(n); },
      },
      h("div", { class: "notify-line" },
        h("span", { class: "notify-kind", text: n.kind_label }),
        h("span", { class: "notify-time", text: timeFmt.format(new Date(n.created_at)) })),
      h("div", { class: "notify-title", text: n.title }),
      n.body ? h("div", { class: "notify-body", text: n.body }) : null));
    }
  }

  async function refresh() {
    try {
      const data = await api("GET", "/api/v1/notifications?limit=" + MENU_SIZE);
      S.items = data.items;
      setUnread(data.unread);
      render();
    } catch (e) { /* the next push or reconnect tries again */ }
  }

  async function markRead(n) {
    if (n.read) return;
    n.read = true;
    setUnread(S.unread - 1);
    render();
    try { await api("POST", "/api/v1/notifications/" + n.id + "/read"); } catch (e) { refresh(); }
  }

  async function openItem(n) {
    await markRead(n);
    if (n.link) window.location.href = n.link;
  }

  function setMenu(open) {
    menu.hidden = !open;
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  toggle.addEventListener("click", (e) => { e.stopPropagation(); setMenu(menu.hidden); });
  document.addEventListener("click", (e) => { if (!menu.hidden && !bell.contains(e.target)) setMenu(false); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") setMenu(false); });
  $("notify-read-all").addEventListener("click", async () => {
    for (const n of S.items) n.read = true;
    setUnread(0);
    render();
    try { await api("POST", "/api/v1/notifications/read-all"); } catch (e) { refresh(); }
  });

  // ------------------------------------------------------------------ alerts

  let audioCtx = null;
  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      if (!audioCtx) audioCtx = new Ctx();
      if (audioCtx.state === "suspended") audioCtx.resume();
    } catch (e) { audioCtx = null; }
  }
  document.addEventListener("click", unlockAudio, { capture: true });

  function siren() {
    unlockAudio();
    if (!audioCtx) return;
    try {
      const t0 = audioCtx.currentTime;
      [0, 0.3, 0.6].forEach((at) => {
        const osc = audioCtx.createOscillator();
        const gain = audioCtx.createGain();
        osc.type = "square";
        osc.frequency.setValueAtTime(980, t0 + at);
        osc.frequency.setValueAtTime(740, t0 + at + 0.14);
        gain.gain.setValueAtTime(0.0001, t0 + at);
        gain.gain.exponentialRampToValueAtTime(0.2, t0 + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.27);
        osc.connect(gain).connect(audioCtx.destination);
        osc.start(t0 + at);
        osc.stop(t0 + at + 0.28);
      });
    } catch (e) { /* sound is best effort */ }
  }

  function alertToast(n) {
    const urgent = !!n.urgent;
    const box = h("div", { class: "alert-toast" + (urgent ? " urgent" : ""), role: urgent ? "alert" : "status",
      dataset: { id: n.id } },
      h("div", { class: "alert-head" }, h("strong", { text: n.kind_label }),
        h("button", { type: "button", class: "alert-close", "aria-label": "关闭", text: "×",
          onclick: () => box.remove() })),
      h("div", { class: "alert-title", text: n.title }),
      n.body ? h("div", { class: "alert-body", text: n.body }) : null,
      n.link ? h("div", { class: "alert-actions" },
        h("button", { type: "button", class: "alert-open", text: urgent ? "立即处理" : "查看",
          onclick: () => openItem(n) }),
        urgent ? h("button", { type: "button", class: "secondary alert-ack", text: "知道了",
          onclick: () => { box.remove(); markRead(n); } }) : null) : null);
    alerts.append(box);
    // An emergency stays until someone acts on it; everything else fades.
    if (!urgent) setTimeout(() => box.remove(), 6000);
    if (urgent) {
      siren();
      try {
        if ("Notification" in window && Notification.permission === "granted") {
          const d = new Notification(n.kind_label + "：" + n.title, { body: n.body || "", tag: "gasdesk-n" + n.id,
            requireInteraction: true });
          d.onclick = () => { window.focus(); openItem(n); d.close(); };
        }
      } catch (e) { /* desktop notifications are best effort */ }
    }
  }

  // ------------------------------------------------------------------ live channel

  function onFrame(f) {
    if (f.type === "hello") {
      setUnread(f.unread);
      C.me = f.user_id;
    } else if (f.type === "notification" && f.notification) {
      const n = f.notification;
      if (S.items.some((x) => x.id === n.id)) return;
      S.items.unshift(n);
      S.items = S.items.slice(0, MENU_SIZE * 2);
      setUnread(S.unread + 1);
      render();
      alertToast(n);
    } else if (f.type === "notification_read") {
      for (const n of S.items) if (f.ids === null || f.ids === undefined || f.ids.includes(n.id)) n.read = true;
      if (typeof f.unread === "number") setUnread(f.unread);
      render();
    } else if (f.type === "emergency") {
      // the emergency board (gasdesk/emergency/static/board.js) listens on this page's one staff socket
      document.dispatchEvent(new CustomEvent("gasdesk:emergency", { detail: f }));
    } else if (f.type === "ichat_message" || f.type === "ichat_read" || f.type === "ichat_chats") {
      onChatFrame(f);
    }
  }

  // ------------------------------------------------------------------ staff chat (gasdesk/internal_chat)

  // The header's 沟通 badge counts unread staff chat messages; the chat page (internal_chat/static/ichat.js)
  // gets the same frames as "gasdesk:ichat" events and marks what it shows read.
  const chatBadge = $("ichat-count");
  const C = { me: null, unread: 0 };

  function setChatUnread(n) {
    C.unread = Math.max(0, n | 0);
    if (!chatBadge) return;
    chatBadge.textContent = C.unread > 99 ? "99+" : String(C.unread);
    chatBadge.hidden = C.unread === 0;
  }

  async function refreshChats() {
    if (!chatBadge) return;
    try { setChatUnread((await api("GET", "/api/v1/internal-chats/unread")).unread_total); } catch (e) { /* next push */ }
  }

  function onChatFrame(f) {
    if (f.type === "ichat_message") {
      const open = window.gasdeskIchat && window.gasdeskIchat.chatId === f.chat_id && document.visibilityState === "visible";
      if (f.message && f.message.sender_id !== C.me && !open) setChatUnread(C.unread + 1);
    } else if (f.type === "ichat_read") {
      setChatUnread(f.unread_total);
    }
    document.dispatchEvent(new CustomEvent("gasdesk:ichat", { detail: f }));
  }

  setUnread(0);
  render();
  refresh();
  refreshChats();
  const link = window.gasdeskSocket.connect({
    path: "/ws/staff",
    onReady: (again) => {
      bell.classList.remove("offline");
      if (again) { refresh(); refreshChats(); } // pushes sent while we were away are in the lists, not on the socket
      document.dispatchEvent(new CustomEvent("gasdesk:staff-socket-ready", { detail: { again } }));
    },
    onFrame,
    onClose: () => { bell.classList.add("offline"); },
  });
  // for tests and debugging
  Object.defineProperty(S, "open", { get: () => link.isReady() });
  window.gasdeskBell = { state: S, chats: C, refresh, link };
})();
