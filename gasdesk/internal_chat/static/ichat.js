/* The staff chat page (/ichat/{id}): history over REST, posting over REST (body caps, CSRF, limits), live
 * messages from the page's one staff socket (/ws/staff, opened by notifications/static/bell.js, which forwards
 * the ichat_* frames as "gasdesk:ichat" DOM events), read marks as `ichat_read` frames on that socket.
 * Plain JS, no build step. */
(function () {
  "use strict";

  const dataNode = document.getElementById("ichat-data");
  if (!dataNode) return;
  const D = JSON.parse(dataNode.textContent);
  const $ = (id) => document.getElementById(id);
  const list = $("ichat-messages");
  const S = { ids: new Set(), lastId: 0, readSent: 0, oldest: null, hasMore: false };
  window.gasdeskIchat = { chatId: D.chat_id, state: S };

  const { h, timeFmt } = window.gasdeskDom;  // web/static/app.js

  function csrf() { return window.gasdeskCsrfToken ? window.gasdeskCsrfToken() : ""; }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", "X-CSRF-Token": csrf() };
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    const res = await fetch(path, { method, credentials: "same-origin", headers, body: payload });
    if (res.status === 204) return null;
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || ("请求失败（" + res.status + "）"));
    return data;
  }

  function showError(message) {
    const box = $("ichat-error");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  // ------------------------------------------------------------------ the side list

  function setSideUnread(chatId, n) {
    const item = document.querySelector('#ichat-list li[data-chat="' + chatId + '"] .ichat-unread');
    if (!item) return;
    item.dataset.unread = String(n);
    item.textContent = n > 99 ? "99+" : String(n);
    item.hidden = !n;
  }

  function bumpSide(chatId, message) {
    const li = document.querySelector('#ichat-list li[data-chat="' + chatId + '"]');
    if (!li) { window.location.reload(); return; } // a chat we did not list yet: someone added us
    const preview = li.querySelector(".ichat-preview");
    if (preview) preview.textContent = previewOf(message);
    li.parentNode.prepend(li);
  }

  function previewOf(m) {
    if (m.kind === "image") return "[图片]";
    if (m.kind === "file") return "[文件]";
    if (m.kind === "card") return m.card && m.card.type === "ticket" ? "[工单卡片]" : "[会话卡片]";
    const t = m.text || "";
    return t.length > 40 ? t.slice(0, 40) + "…" : t;
  }

  // ------------------------------------------------------------------ messages

  function sizeLabel(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(n / 1024)) + " KB"; }

  function textWithMentions(text) {
    // @姓名 stands out; everything stays text (no HTML from messages ever reaches the DOM as markup)
    const out = [];
    const re = /@[^\s@，。,.!?！？:：]{1,16}/g;
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(h("span", { class: "ichat-mention", text: m[0] }));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  function renderMessage(m) {
    if (m.kind === "system") {
      return h("li", { class: "ichat-system", dataset: { id: m.id } }, m.text || "");
    }
    const mine = m.sender_id === D.me;
    const body = [];
    if (m.card) {
      body.push(h("a", { class: "ichat-card", href: m.card.open_url, dataset: { card: m.card.type } },
        h("span", { class: "ichat-card-kind", text: m.card.type === "ticket" ? "工单" : "会话" }),
        h("strong", { class: "ichat-card-title", text: m.card.title }),
        m.card.status_label ? h("span", { class: "ichat-card-status", text: m.card.status_label }) : null));
    }
    if (m.file) {
      if (m.file.image) {
        body.push(h("a", { href: m.file.url, target: "_blank", rel: "noopener", class: "ichat-image" },
          h("img", { src: m.file.url, alt: m.file.name, loading: "lazy" })));
      } else {
        body.push(h("a", { href: m.file.url, class: "ichat-file", download: m.file.name },
          "📎 " + m.file.name + "（" + sizeLabel(m.file.size) + "）"));
      }
    }
    if (m.text) body.push(h("div", { class: "ichat-text" }, textWithMentions(m.text)));
    return h("li", { class: "ichat-msg" + (mine ? " mine" : "") + (m.mentions.includes(D.me) ? " mentions-me" : ""),
      dataset: { id: m.id } },
      h("div", { class: "ichat-meta" }, h("span", { class: "ichat-sender", text: mine ? "我" : m.sender_name }),
        h("time", { text: timeFmt.format(new Date(m.created_at)) })),
      h("div", { class: "ichat-bubble" }, body));
  }

  function add(m, atTop) {
    if (S.ids.has(m.id)) return false;
    S.ids.add(m.id);
    const node = renderMessage(m);
    if (atTop) list.prepend(node);
    else {
      // in id order even if a push overtook the REST answer
      const after = Array.from(list.children).find((li) => Number(li.dataset.id) > m.id);
      list.insertBefore(node, after || null);
    }
    if (m.id > S.lastId) S.lastId = m.id;
    return true;
  }

  function toBottom() { list.scrollTop = list.scrollHeight; }

  async function load(before) {
    const q = "?limit=50" + (before ? "&before_id=" + before : "");
    const data = await api("GET", "/api/v1/internal-chats/" + D.chat_id + "/messages" + q);
    const items = before ? data.items.slice().reverse() : data.items;
    for (const m of items) add(m, !!before);
    S.hasMore = data.has_more;
    if (data.items.length) S.oldest = data.items[0].id;
    if (!before) toBottom();
  }

  list && list.addEventListener("scroll", () => {
    if (list.scrollTop === 0 && S.hasMore && S.oldest) {
      const height = list.scrollHeight;
      load(S.oldest).then(() => { list.scrollTop = list.scrollHeight - height; }).catch(() => {});
    }
  });

  // ------------------------------------------------------------------ read marks

  function markRead() {
    if (!D.chat_id || !S.lastId || S.lastId <= S.readSent || document.visibilityState !== "visible") return;
    S.readSent = S.lastId;
    setSideUnread(D.chat_id, 0);
    const bell = window.gasdeskBell;
    if (bell && bell.link && bell.link.isReady()) {
      bell.link.send({ type: "ichat_read", chat_id: D.chat_id, message_id: S.lastId });
    } else {
      api("POST", "/api/v1/internal-chats/" + D.chat_id + "/read", { up_to_id: S.lastId }).catch(() => {});
    }
  }
  document.addEventListener("visibilitychange", markRead);

  // ------------------------------------------------------------------ live frames (forwarded by bell.js)

  document.addEventListener("gasdesk:ichat", (e) => {
    const f = e.detail;
    if (f.type === "ichat_message") {
      if (f.chat_id === D.chat_id && list) {
        const fresh = add(f.message, false);
        if (fresh) { toBottom(); markRead(); }
      } else if (f.message.sender_id !== D.me) {
        const badge = document.querySelector('#ichat-list li[data-chat="' + f.chat_id + '"] .ichat-unread');
        setSideUnread(f.chat_id, (badge ? Number(badge.dataset.unread) || 0 : 0) + 1);
      }
      bumpSide(f.chat_id, f.message);
    } else if (f.type === "ichat_read" && f.chat_id !== D.chat_id) {
      setSideUnread(f.chat_id, 0);
    } else if (f.type === "ichat_chats") {
      // membership changed: the list (and, when it is this chat, its members) read again
      if (f.chat_id === D.chat_id || !document.querySelector('#ichat-list li[data-chat="' + f.chat_id + '"]')) {
        window.location.reload();
      }
    }
  });
  // pushes sent while the socket was away are in the history, not on the socket: read it again after a reconnect
  document.addEventListener("gasdesk:staff-socket-ready", (e) => {
    if (D.chat_id && e.detail && e.detail.again) load().then(markRead).catch(() => {});
  });

  // ------------------------------------------------------------------ search

  const searchForm = $("ichat-search-form");
  searchForm && searchForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = $("ichat-search").value.trim();
    const out = $("ichat-results");
    out.replaceChildren();
    if (!q) { out.hidden = true; return; }
    try {
      const data = await api("POST", "/api/v1/internal-chats/search", { q });
      if (!data.items.length) out.append(h("li", { class: "muted", text: "没有找到“" + q + "”" }));
      for (const hit of data.items) {
        out.append(h("li", {}, h("a", { href: "/ichat/" + hit.chat_id },
          h("strong", { text: hit.chat_title }), " ", h("span", { class: "muted", text: hit.message.sender_name }),
          h("div", { text: hit.message.text || (hit.message.card && hit.message.card.title) || (hit.message.file && hit.message.file.name) || "" }))));
      }
    } catch (err) { out.append(h("li", { class: "muted", text: err.message })); }
    out.hidden = false;
  });

  if (!D.chat_id) return;

  // ------------------------------------------------------------------ composing

  const form = $("ichat-form");
  const input = $("ichat-input");
  async function send() {
    const text = input.value.trim();
    if (!text) return;
    $("ichat-send").disabled = true;
    try {
      const m = await api("POST", "/api/v1/internal-chats/" + D.chat_id + "/messages", { text });
      input.value = "";
      showError("");
      if (add(m, false)) toBottom();
    } catch (err) { showError(err.message); }
    finally { $("ichat-send").disabled = false; input.focus(); }
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); send(); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });

  $("ichat-file").addEventListener("change", async (e) => {
    const file = e.target.files && e.target.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("csrf_token", csrf());
    body.append("file", file, file.name);
    try {
      const m = await api("POST", "/api/v1/internal-chats/" + D.chat_id + "/files", body);
      showError("");
      if (add(m, false)) toBottom();
    } catch (err) { showError(err.message); }
    e.target.value = "";
  });

  $("ichat-card-share").addEventListener("click", async () => {
    const ref = $("ichat-card-ref").value.trim();
    if (!ref) { showError("请填写工单号或会话 id"); return; }
    try {
      const m = await api("POST", "/api/v1/internal-chats/" + D.chat_id + "/cards",
        { type: $("ichat-card-type").value, ref, note: input.value.trim() });
      $("ichat-card-ref").value = "";
      input.value = "";
      showError("");
      if (add(m, false)) toBottom();
    } catch (err) { showError(err.message); }
  });

  // ------------------------------------------------------------------ members

  const manager = D.my_role === "owner" || D.my_role === "admin";
  document.querySelectorAll("[data-admin-only]").forEach((el) => { el.hidden = !manager; });
  const addForm = $("ichat-add-form");
  addForm && addForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = Number($("ichat-add-user").value);
    if (!id) return;
    try { await api("POST", "/api/v1/internal-chats/" + D.chat_id + "/members", { user_id: id }); window.location.reload(); }
    catch (err) { showError(err.message); }
  });
  document.querySelectorAll(".ichat-remove").forEach((b) => b.addEventListener("click", async () => {
    try { await api("DELETE", "/api/v1/internal-chats/" + D.chat_id + "/members/" + b.dataset.user); window.location.reload(); }
    catch (err) { showError(err.message); }
  }));
  const leave = $("ichat-leave");
  leave && leave.addEventListener("click", async () => {
    if (!window.confirm("确定退出该群聊？")) return;
    try { await api("DELETE", "/api/v1/internal-chats/" + D.chat_id + "/members/" + D.me); window.location.href = "/ichat"; }
    catch (err) { showError(err.message); }
  });

  load().then(markRead).catch((err) => showError(err.message));
})();
