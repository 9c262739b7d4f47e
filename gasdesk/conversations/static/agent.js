/* gasdesk agent console (/agent). Plain JS, no build step.
 * Protocol: docs/chat-protocol.md (staff socket /ws/agent + REST under /api/v1). The socket, the outbox of
 * unacknowledged replies and the seq line of the open conversation are the shared client's
 * (web/static/socket-client.js); this file is the console's UI. */
(function () {
  "use strict";

  const root = document.getElementById("console");
  if (!root) return;
  const $ = (id) => document.getElementById(id);

  const ME = { id: Number(root.dataset.userId), name: root.dataset.userName, role: root.dataset.role };
  const IS_MANAGER = ME.role === "supervisor" || ME.role === "admin";
  const PRESENCE_LABELS = { online: "在线", busy: "忙碌", away: "离开", offline: "离线" };
  const SENDER_LABELS = { resident: "居民", bot: "机器人", agent: "坐席", system: "系统" };
  // Channel names come from the server (conversations/models.py CHANNEL_LABELS), one table for every page.
  const CHANNEL_LABELS = JSON.parse(root.dataset.channelLabels || "{}");
  const REASON_LABELS = { after_hours: "非工作时间", no_agent: "无空闲坐席", queue_full: "排队已满" };
  const INTENT_LABELS = { human_agent: "要求转人工", greeting: "问候", gas_leak: "燃气泄漏" };
  const URGENT = 10;
  // The numbers shared with the server (gasdesk/realtime/protocol.py).
  const P = window.gasdeskSocket.protocol();

  const S = {
    presence: null, maxConcurrent: 0,
    mine: [], queue: [], left: [], queueFetchedAt: Date.now(),
    selectedId: null, conv: null, messages: [], selectToken: 0,
    pending: new Map(), // client_msg_id -> {conversation_id, text, status, error, seq, item}: what the composer shows
    highlight: new Set(),
    canned: [], cannedFor: null, cannedIndex: 0,
    custFor: null, custAutoValue: "", custUserEdited: false,
    readSeq: {}, // conversation id -> last seq I have read here
    badges: {}, // conversation id -> {stranger, tags}: 陌生号码 and smart tags (gasdesk/tags)
    watched: null, lastTypingSent: 0, typingTimer: null, gapFetching: false,
  };

  // ------------------------------------------------------------------ helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const timeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false });
  const dateTimeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
  const dayFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" });

  // Message text with its http(s) addresses as links (static/chat-text.js; plain text if it failed to load).
  function richText(text) {
    const T = window.gasdeskChatText;
    return T ? T.linkify(text || "") : document.createTextNode(text || "");
  }
  const textLength = (text) => (window.gasdeskChatText ? window.gasdeskChatText.length(text) : (text || "").length);

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return dayFmt.format(d) === dayFmt.format(new Date()) ? timeFmt.format(d) : dateTimeFmt.format(d);
  }

  function fmtSlot(startIso, endIso) {
    return dateTimeFmt.format(new Date(startIso)) + "–" + timeFmt.format(new Date(endIso));
  }

  function fmtElapsed(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + "秒";
    if (s < 3600) return Math.floor(s / 60) + "分" + String(s % 60).padStart(2, "0") + "秒";
    return Math.floor(s / 3600) + "小时" + Math.floor((s % 3600) / 60) + "分";
  }

  function fmtSize(n) {
    if (!n && n !== 0) return "";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function toast(message, kind, ms) {
    const el = h("div", { class: "toast " + (kind || ""), role: kind === "error" ? "alert" : "status", text: message });
    $("toasts").append(el);
    setTimeout(() => el.remove(), ms || (kind === "error" ? 6000 : 3000));
  }

  function debounce(fn, ms) {
    let t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  class ApiError extends Error {
    constructor(message, status, code) { super(message); this.status = status; this.code = code; }
  }

  async function api(method, path, body) {
    let res;
    try {
      res = await fetch(path, {
        method, credentials: "same-origin",
        headers: Object.assign(
          { Accept: "application/json", "X-CSRF-Token": window.gasdeskCsrfToken ? window.gasdeskCsrfToken() : "" },
          body !== undefined ? { "Content-Type": "application/json" } : {}),
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      throw new ApiError("网络错误，请检查网络后重试", 0, "network");
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = data && data.error;
      let message = (err && err.message) || ("请求失败（" + res.status + "）");
      if (res.status === 401) message = "登录已过期，请重新登录";
      throw new ApiError(message, res.status, err && err.code);
    }
    return data;
  }

  function showError(e) { toast(e && e.message ? e.message : "操作失败，请稍后重试", "error"); }

  // ------------------------------------------------------------------ notifications and sound

  let audioCtx = null;
  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      if (!audioCtx) audioCtx = new Ctx();
      if (audioCtx.state === "suspended") audioCtx.resume();
    } catch (e) { audioCtx = null; }
  }

  function beep() {
    unlockAudio();
    if (!audioCtx) return;
    try {
      const t0 = audioCtx.currentTime;
      [[880, 0], [1320, 0.18]].forEach(([freq, at]) => {
        const osc = audioCtx.createOscillator();
        const gain = audioCtx.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, t0 + at);
        gain.gain.exponentialRampToValueAtTime(0.25, t0 + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.16);
        osc.connect(gain).connect(audioCtx.destination);
        osc.start(t0 + at);
        osc.stop(t0 + at + 0.17);
      });
    } catch (e) { /* sound is best effort */ }
  }

  let permissionAsked = false;
  document.addEventListener("click", () => {
    unlockAudio();
    if (permissionAsked) return;
    permissionAsked = true;
    try {
      if ("Notification" in window && Notification.permission === "default") {
        const r = Notification.requestPermission();
        if (r && r.catch) r.catch(() => {});
      }
    } catch (e) { /* unsupported */ }
  }, { capture: true });

  function notifyAssigned(conversationId) {
    S.highlight.add(conversationId);
    beep();
    try {
      if ("Notification" in window && Notification.permission === "granted") {
        const n = new Notification("新会话分配", { body: "您有一个新的会话（#" + conversationId + "），请及时接入。",
          tag: "gasdesk-conv-" + conversationId });
        n.onclick = () => { window.focus(); selectConversation(conversationId); n.close(); };
      }
    } catch (e) { /* notifications are best effort */ }
  }

  // ------------------------------------------------------------------ presence and load

  function renderPresence() {
    for (const b of $("presence").querySelectorAll("button")) {
      const on = b.dataset.presence === S.presence;
      b.classList.toggle("active", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    }
    const n = S.mine.length;
    const load = $("load");
    load.textContent = "当前会话 " + n + " / " + (S.maxConcurrent || 0);
    load.classList.toggle("full", S.maxConcurrent > 0 && n >= S.maxConcurrent);
  }

  async function loadPresence() {
    const p = await api("GET", "/api/v1/agent/presence");
    S.presence = p.presence;
    S.maxConcurrent = p.max_concurrent;
    renderPresence();
  }

  $("presence").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-presence]");
    if (!b) return;
    try {
      const p = await api("PUT", "/api/v1/agent/presence", { presence: b.dataset.presence });
      S.presence = p.presence;
      renderPresence();
      toast("状态已切换为「" + p.label + "」", "ok", 1800);
      scheduleRefresh();
    } catch (e) { showError(e); }
  });

  // ------------------------------------------------------------------ left column lists

  async function refreshLists() {
    const results = await Promise.allSettled([
      api("GET", "/api/v1/agent/conversations"), api("GET", "/api/v1/agent/queue"),
      api("GET", "/api/v1/left-messages"), api("GET", "/api/v1/agent/presence"),
    ]);
    const [mine, queue, left, presence] = results;
    if (mine.status === "fulfilled") S.mine = mine.value;
    if (queue.status === "fulfilled") { S.queue = queue.value; S.queueFetchedAt = Date.now(); }
    if (left.status === "fulfilled") S.left = left.value;
    if (presence.status === "fulfilled") { S.presence = presence.value.presence; S.maxConcurrent = presence.value.max_concurrent; }
    const failed = results.find((r) => r.status === "rejected");
    if (failed && failed.reason && failed.reason.status === 401) toast(failed.reason.message, "error");
    renderMine(); renderQueue(); renderLeft(); renderPresence(); orderSections();
    loadBadges();
  }

  /** 陌生号码 and smart tags of the listed conversations (one request for both lists). */
  async function loadBadges() {
    const ids = [...S.mine.map((c) => c.id), ...S.queue.map((q) => q.id)];
    if (!ids.length) return;
    try {
      const list = await api("GET", "/api/v1/tags/badges?" + ids.map((i) => "conversation_id=" + i).join("&"));
      S.badges = {};
      for (const b of list) S.badges[b.conversation_id] = b;
    } catch (e) { return; }
    renderMine(); renderQueue();
  }

  function tagChip(t, onRemove) {
    return h("span", { class: "tag smart-tag", style: "background:" + t.colour + ";color:#fff", title: t.source_label, dataset: { tag: t.tag } },
      t.tag, onRemove ? h("button", { type: "button", class: "tag-x", title: "移除标签", "aria-label": "移除标签 " + t.tag,
        text: "×", onclick: (e) => { e.stopPropagation(); onRemove(t); } }) : null);
  }

  function badgePills(id) {
    const b = S.badges[id];
    if (!b) return [];
    return [b.stranger ? h("span", { class: "pill stranger", title: "首次联系且未关联客户的号码/微信用户", text: "陌生号码" }) : null,
      ...b.tags.slice(0, 3).map((t) => tagChip(t))];
  }
  const scheduleRefresh = debounce(() => { refreshLists().catch(showError); }, 300);

  function previewText(lm) {
    if (!lm) return "";
    const who = lm.sender === "agent" ? "我" : (SENDER_LABELS[lm.sender] || "");
    return (who ? who + "：" : "") + (lm.text || "[附件]");
  }

  function renderMine() {
    const list = $("mine-list");
    list.replaceChildren();
    $("mine-count").textContent = S.mine.length;
    if (!S.mine.length) { list.append(h("li", { class: "empty", text: "暂无会话" })); return; }
    for (const c of S.mine) {
      const selected = c.id === S.selectedId;
      // a list fetched before our `read` reached the server must not bring the badge back
      const unread = selected || (S.readSeq[c.id] || 0) >= c.last_seq ? 0 : c.unread;
      const lm = c.last_message;
      const waiting = lm && lm.sender === "resident";
      const li = h("li", {
        class: "conv-item" + (selected ? " selected" : "") + (c.priority >= URGENT ? " urgent" : "") +
          (S.highlight.has(c.id) ? " flash" : ""),
        dataset: { id: c.id }, tabindex: "0", role: "button",
        onclick: () => selectConversation(c.id),
        onkeydown: (e) => { if (e.key === "Enter") selectConversation(c.id); },
      },
      h("div", { class: "row" },
        h("span", { class: "name", text: c.customer_name || ("访客 #" + c.id) }),
        c.priority >= URGENT ? h("span", { class: "pill urgent", text: "紧急" }) : null,
        !c.accepted ? h("span", { class: "pill offered", text: "待接入" }) : null,
        c.resident_left ? h("span", { class: "pill left", title: "居民已关闭对话页面", text: "居民已离开" }) : null,
        c.callback ? h("span", { class: "pill callback", title: "居民已预约回拨：" + c.callback.phone, text: "预约回拨" }) : null,
        ...badgePills(c.id),
        h("span", { class: "right" },
          unread > 0 ? h("span", { class: "badge unread", title: "未读消息", text: unread > 99 ? "99+" : String(unread) }) : null)),
      h("div", { class: "preview", text: previewText(lm) || "（暂无消息）" }),
      h("div", { class: "sub" },
        h("span", { text: (CHANNEL_LABELS[c.channel] || c.channel) + (c.skill_group ? " · " + c.skill_group : "") }),
        waiting ? h("span", { class: "wait", dataset: { since: String(Date.parse(lm.at)), prefix: "等待 " } })
          : (lm ? h("span", { text: fmtTime(lm.at) }) : null)));
    list.append(li);
    }
    tick();
  }

  /** Emergencies first everywhere: an emergency waiting in the queue puts the queue above my ordinary work. */
  function orderSections() {
    const mine = $("mine-section"), queue = $("queue-section");
    const urgentWaiting = S.queue.some((q) => q.priority >= URGENT);
    const urgentMine = S.mine.some((c) => c.priority >= URGENT);
    const queueFirst = urgentWaiting && !urgentMine;
    queue.classList.toggle("urgent", urgentWaiting);
    if (queueFirst && mine.previousElementSibling !== queue) mine.before(queue);
    else if (!queueFirst && queue.previousElementSibling !== mine) queue.before(mine);
  }

  function renderQueue() {
    const list = $("queue-list");
    list.replaceChildren();
    $("queue-count").textContent = S.queue.length;
    if (!S.queue.length) { list.append(h("li", { class: "empty", text: "暂无排队" })); return; }
    for (const q of S.queue) {
      const since = S.queueFetchedAt - (q.waited_s || 0) * 1000;
      const summary = q.handoff_summary || {};
      const intent = summary.intent ? (INTENT_LABELS[summary.intent] || summary.intent) : null;
      const li = h("li", {
        class: "conv-item queue-item" + (q.priority >= URGENT ? " urgent" : "") + (q.id === S.selectedId ? " selected" : ""),
        dataset: { id: q.id },
        onclick: (e) => { if (IS_MANAGER && !e.target.closest("button")) selectConversation(q.id); },
      },
      h("div", { class: "row" },
        h("span", { class: "name", text: "访客 #" + q.id }),
        q.priority >= URGENT ? h("span", { class: "pill urgent", text: "紧急" }) : null,
        q.resident_left ? h("span", { class: "pill left", title: "居民已关闭对话页面", text: "居民已离开" }) : null,
        q.callback ? h("span", { class: "pill callback", title: "居民已预约回拨：" + q.callback.phone, text: "预约回拨" }) : null,
        h("span", { class: "pill", text: q.skill_group || "未分组" }),
        ...badgePills(q.id),
        h("span", { class: "right" }, q.position ? h("span", { class: "muted", text: "第 " + q.position + " 位" }) : null)),
      intent ? h("div", { class: "preview", text: "机器人摘要：" + intent }) : null,
      h("div", { class: "sub" },
        h("span", { class: "wait", dataset: { since: String(since), prefix: "已等待 " } }),
        h("span", { text: CHANNEL_LABELS[q.channel] || q.channel })),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "accept-btn", text: "接入",
          onclick: (e) => { e.stopPropagation(); acceptConversation(q.id, e.currentTarget); } })));
      list.append(li);
    }
    tick();
  }

  function renderLeft() {
    const list = $("left-list");
    list.replaceChildren();
    $("left-count").textContent = S.left.length;
    if (!S.left.length) { list.append(h("li", { class: "empty", text: "暂无留言" })); return; }
    for (const m of S.left) {
      list.append(h("li", { class: "conv-item left-item", dataset: { id: m.id } },
        h("div", { class: "row" },
          h("span", { class: "name", text: (m.name || "居民") + " " + m.phone }),
          h("span", { class: "right" }, h("span", { class: "pill", text: REASON_LABELS[m.reason] || m.reason || "留言" }))),
        h("div", { class: "preview", title: m.content, text: m.content }),
        h("div", { class: "sub" }, h("span", { text: fmtTime(m.created_at) }),
          m.conversation_id ? h("span", { text: "会话 #" + m.conversation_id }) : null),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "secondary", text: "已处理", onclick: async (e) => {
            e.stopPropagation();
            e.currentTarget.disabled = true;
            try {
              await api("POST", "/api/v1/left-messages/" + m.id + "/handled");
              toast("留言已标记为已处理", "ok", 1800);
            } catch (err) { showError(err); }
            scheduleRefresh();
          } }))));
    }
  }

  function tick() {
    const now = Date.now();
    for (const el of root.querySelectorAll("[data-since]")) {
      const ms = now - Number(el.dataset.since);
      el.textContent = (el.dataset.prefix || "") + fmtElapsed(ms);
      el.classList.toggle("long", ms > 3 * 60 * 1000);
    }
  }
  setInterval(tick, 1000);
  setInterval(refreshDelivery, 5000);

  async function acceptConversation(id, button) {
    if (button) button.disabled = true;
    try {
      const row = await api("POST", "/api/v1/conversations/" + id + "/accept");
      S.highlight.delete(id);
      toast("已接入会话 #" + id, "ok", 1800);
      await refreshLists();
      if (S.selectedId === id) {
        S.conv = row;
        renderHeader();
        await catchUp();
      } else {
        await selectConversation(id);
      }
      $("composer-input").focus();
    } catch (e) {
      showError(e);
      scheduleRefresh();
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ middle column: the conversation

  function mineRow(id) { return S.mine.find((c) => c.id === id); }

  function canWrite() {
    const c = S.conv;
    return !!c && c.state === "assigned" && c.accepted && (c.agent_id === ME.id);
  }

  function renderHeader() {
    const c = S.conv;
    if (!c) return;
    const row = mineRow(c.id);
    const name = (row && row.customer_name) || c.customer_name || ("访客 #" + c.id);
    $("conv-title").textContent = name + "（会话 #" + c.id + "）";
    const stateLabel = { bot: "机器人接待中", queued: "排队中", assigned: c.accepted ? "人工服务中" : "待接入", closed: "已结束" }[c.state] || c.state;
    const meta = [CHANNEL_LABELS[c.channel] || c.channel, c.skill_group, stateLabel,
      c.priority >= URGENT ? "紧急" : null, c.resident_left && c.state !== "closed" ? "居民已离开" : null,
      c.agent_name && c.agent_id !== ME.id ? "坐席：" + c.agent_name : null, c.channel_note || null];
    $("conv-meta").textContent = meta.filter(Boolean).join(" · ");
    const offered = (c.state === "assigned" && !c.accepted && (c.agent_id === ME.id || IS_MANAGER)) || c.state === "queued";
    $("btn-accept").hidden = !offered;
    $("btn-transfer").hidden = c.state !== "assigned";
    $("btn-close").hidden = c.state === "closed" || c.state === "bot";
    // 生成工单: the ticket form opens pre-filled with a draft extracted from this transcript.
    const ticketLink = $("btn-ticket");
    ticketLink.href = "/tickets/new?conversation_id=" + encodeURIComponent(c.id);
    ticketLink.hidden = !(c.state === "assigned" && c.agent_id === ME.id) && !(c.state === "closed" && c.agent_id === ME.id)
      && !IS_MANAGER;
    const input = $("composer-input");
    const writable = canWrite();
    input.disabled = !writable;
    $("btn-send").disabled = !writable;
    $("btn-canned").disabled = !writable;
    input.placeholder = writable ? "输入回复，Enter 发送，Shift+Enter 换行；输入 / 使用快捷回复（如 /hi）"
      : c.state === "closed" ? "会话已结束" : (offered ? "请先点击「接入」再回复" : "该会话不在您名下，只读");
    renderHandoffBanner();
    renderCallbackBanner();
  }

  /** A callback the resident booked at peak hours (gasdesk/callbacks): the masked number, 回拨 to reveal it
   *  (audited; gasdesk places the call when the hotline here can originate, else the agent dials from their
   *  phone), then the outcome. */
  const REVEALED = new Map();
  function renderCallbackBanner() {
    const c = S.conv;
    const banner = $("callback-banner");
    const cb = c && c.callback;
    if (!cb || c.state === "closed") { banner.hidden = true; return; }
    const mine = canWrite();
    // the number once revealed survives re-renders of the header (state events arrive any time)
    const revealed = REVEALED.get(cb.id);
    const number = h("span", { class: "callback-number" },
      revealed ? h("a", { href: "tel:" + revealed, text: revealed }) : cb.phone);
    const outcome = (value, label, cls) => h("button", { type: "button", class: "secondary " + (cls || ""),
      dataset: { outcome: value }, text: label, disabled: !mine,
      onclick: async (e) => {
        try {
          await api("POST", "/api/v1/callbacks/" + cb.id + "/outcome", { outcome: value });
          toast("已记录回拨结果：" + label);
          banner.hidden = true;
        } catch (err) { showError(err); }
      } });
    banner.replaceChildren(...[
      h("strong", { text: "预约回拨：" }), number,
      cb.attempts ? h("span", { class: "muted", text: "（已回拨 " + cb.attempts + " 次）" }) : null,
      h("button", { type: "button", id: "btn-callback-dial", text: "回拨", disabled: !mine,
        title: mine ? "显示完整号码并拨打" : "请先接入",
        onclick: async () => {
          try {
            const res = await api("POST", "/api/v1/callbacks/" + cb.id + "/dial");
            if (res.originated) {  // gasdesk calls the resident; the softphone rings once they answer
              toast("正在呼叫 " + res.phone + "，对方接听后将接入您的软电话，结束后记录结果");
              return;
            }
            REVEALED.set(cb.id, res.phone);
            renderCallbackBanner();
            toast("请用电话拨打 " + res.phone + "，结束后记录结果");
          } catch (err) { showError(err); }
        } }),
      outcome("reached", "已接通"), outcome("no_answer", "未接通，稍后重试"), outcome("cancelled", "取消回拨", "danger"),
    ].filter(Boolean));
    banner.hidden = false;
  }

  function renderHandoffBanner() {
    const c = S.conv;
    const banner = $("handoff-banner");
    const s = c && c.handoff_summary;
    if (!s || (!s.intent && !(s.slots && Object.keys(s.slots).length))) { banner.hidden = true; return; }
    banner.replaceChildren(
      h("strong", { text: "机器人转人工摘要：" }),
      s.intent ? h("span", { text: "意图 " + (INTENT_LABELS[s.intent] || s.intent) + "　" }) : null,
      ...Object.entries(s.slots || {}).map(([k, v]) => h("span", { class: "slot", text: k + "：" + (typeof v === "object" ? JSON.stringify(v) : v) })),
      c.handoff_reason ? h("span", { class: "muted", text: "（触发：" + ({ request: "居民要求", keyword: "关键词", emergency: "紧急情况", bot_misses: "机器人未能回答", intent: "意图" }[c.handoff_reason] || c.handoff_reason) + "）" }) : null);
    banner.hidden = false;
  }

  function renderAttachment(m) {
    const p = m.payload || {};
    if (!p.url) return null;
    if (m.type === "image") {
      return h("a", { href: p.url, target: "_blank", rel: "noopener" }, h("img", { class: "attach", src: p.url, alt: p.name || "图片" }));
    }
    return h("a", { class: "file-link", href: p.url, target: "_blank", rel: "noopener", text: "[文件] " + (p.name || "文件") + (p.size ? "（" + fmtSize(p.size) + "）" : "") });
  }

  function renderMessage(m) {
    const p = m.payload || {};
    const system = m.sender === "system";
    const isCard = m.type === "card";
    const el = h("div", { class: "msg msg-" + m.sender + (isCard ? " is-card" : ""), dataset: { seq: m.seq, cmid: m.client_msg_id || "", mid: m.id || "" } });
    if (!system) {
      const base = SENDER_LABELS[m.sender] || m.sender;
      const who = m.sender_name ? m.sender_name + (m.sender === "agent" ? "" : "（" + base + "）") : base;
      el.append(h("div", { class: "who", text: who + " " + fmtTime(m.created_at) }));
    }
    const bubble = h("div", { class: "bubble" });
    if (m.type === "image" || m.type === "file") {
      bubble.append(renderAttachment(m) || h("span", { text: "[附件]" }));
      if (m.text) bubble.append(h("div", {}, richText(m.text)));
    } else if (isCard) {
      const kind = p.kind || (p.card && p.card.kind);
      const label = { rating: "[满意度评价卡片] ", leave_message: "[留言卡片] ", followup: "[回访问卷] " }[kind] || "[卡片] ";
      bubble.append(label + (m.text || p.title || (p.card && p.card.title) || ""));
    } else {
      bubble.append(richText(m.text));
      if (system) bubble.append(h("span", { class: "muted", text: "  " + fmtTime(m.created_at) }));
    }
    el.append(bubble);
    if (Array.isArray(p.quick_replies) && p.quick_replies.length) {
      el.append(h("div", { class: "quick" }, p.quick_replies.map((q) => h("span", { text: q.label }))));
    }
    if (p.quick_reply && m.sender === "resident") el.append(h("div", { class: "status", text: "（点击了快捷按钮）" }));
    if (canCorrect(m)) {
      el.querySelector(".who").append(h("button", { type: "button", class: "link-btn intent-fix", title: "机器人没理解这句话？标注正确的意图",
        text: "纠正意图", onclick: () => openCorrection(el, m) }));
    }
    return el;
  }

  // ------------------------------------------------------------------ intent corrections (learning from production)
  // A resident's text the bot misunderstood can be marked with the intent it meant; supervisors review it on
  // /admin/bot/corrections and approved ones train the next model (gasdesk bot retrain).

  let intentOptions = null; // [{intent, label}] from /api/v1/bot/intents, fetched on first use

  function canCorrect(m) {
    const c = S.conv;
    return m.sender === "resident" && m.type === "text" && !!m.id && !!(m.text || "").trim() && !!c &&
      (IS_MANAGER || c.agent_id === ME.id);
  }

  function showCorrection(node, row) {
    let tag = node.querySelector(".intent-mark");
    if (!tag) { tag = h("div", { class: "status intent-mark" }); node.append(tag); }
    tag.textContent = "已标注意图：" + row.intent_label + "（" + row.status_label + "）" +
      (row.predicted_label ? "，机器人识别为 " + row.predicted_label : "");
    const button = node.querySelector(".intent-fix");
    if (button && row.status !== "pending") button.remove();
  }

  async function openCorrection(node, m) {
    if (node.querySelector(".intent-form")) return;
    if (!intentOptions) {
      try { intentOptions = await api("GET", "/api/v1/bot/intents"); } catch (e) { showError(e); return; }
    }
    const select = h("select", { "aria-label": "正确的意图" }, h("option", { value: "", text: "请选择居民的真实意图…" }),
      intentOptions.map((o) => h("option", { value: o.intent, text: o.label })));
    const form = h("form", { class: "intent-form" }, select,
      h("button", { type: "submit", text: "提交" }),
      h("button", { type: "button", class: "secondary", text: "取消", onclick: () => form.remove() }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!select.value) { toast("请选择意图", "error"); return; }
      try {
        const row = await api("POST", "/api/v1/bot/corrections", { message_id: m.id, intent: select.value });
        form.remove();
        showCorrection(node, row);
        toast("已提交，待班长审核", "ok");
      } catch (e) { showError(e); }
    });
    node.append(form);
    select.focus();
  }

  async function refreshCorrections() {
    const c = S.conv;
    if (!c || !(IS_MANAGER || c.agent_id === ME.id)) return;
    let page;
    try { page = await api("GET", "/api/v1/bot/corrections?conversation_id=" + encodeURIComponent(c.id) + "&limit=500"); }
    catch (e) { return; }
    if (!S.conv || S.conv.id !== c.id) return;
    for (const row of page.items) {
      const node = document.querySelector('#transcript .msg[data-mid="' + row.message_id + '"]');
      if (node) showCorrection(node, row);
    }
  }

  // WeChat/SMS: whether each reply reached the resident's phone, and why not (48-hour window, outage…).
  // Messages on those channels leave through the outbound queue; the console asks for their status.
  async function refreshDelivery() {
    const c = S.conv;
    if (!c || c.channel === "webchat") return;
    let rows;
    try { rows = await api("GET", "/api/v1/outbound?conversation_id=" + encodeURIComponent(c.id) + "&limit=200"); }
    catch (e) { return; }
    if (!S.conv || S.conv.id !== c.id) return;
    const byMessage = {};
    rows.slice().reverse().forEach((r) => { if (r.message_id) (byMessage[r.message_id] = byMessage[r.message_id] || []).push(r); });
    document.querySelectorAll("#transcript .msg[data-mid]").forEach((node) => {
      const list = byMessage[node.dataset.mid];
      let tag = node.querySelector(".delivery");
      if (!list) { if (tag) tag.remove(); return; }
      const text = list.map((r) => (r.channel === "sms" ? "短信" : "微信") + r.status_label +
        (r.reason ? "（" + (r.reason_label || r.reason) + "）" : "")).join(" → ");
      if (!tag) { tag = h("div", { class: "status delivery" }); node.append(tag); }
      tag.textContent = text;
      tag.classList.toggle("failed", list.some((r) => r.status === "failed" || r.status === "skipped"));
    });
  }

  function nearBottom() {
    const t = $("transcript");
    return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  }
  function scrollBottom() { const t = $("transcript"); t.scrollTop = t.scrollHeight; }

  function renderTranscript() {
    const box = $("msgs");
    box.replaceChildren(...S.messages.map(renderMessage));
    renderPending();
    scrollBottom();
    refreshDelivery();
    refreshCorrections();
  }

  function renderPending() {
    const box = $("pending-msgs");
    box.replaceChildren();
    for (const [cmid, p] of S.pending) {
      if (p.conversation_id !== S.selectedId) continue;
      const failed = p.status === "failed";
      const status = failed ? "发送失败：" + (p.error || "") : p.status === "acked" ? "已送达" : "发送中";
      box.append(h("div", { class: "msg msg-agent pending" + (failed ? " failed" : ""), dataset: { cmid } },
        h("div", { class: "bubble", text: p.text }),
        h("div", { class: "status" }, status, failed ? h("button", { type: "button", class: "secondary", text: "重试",
          onclick: () => { p.status = "sending"; p.error = null; renderPending(); link.outbox.retry(p.item); } }) : null,
        failed ? h("button", { type: "button", class: "secondary", text: "删除", onclick: () => { S.pending.delete(cmid); renderPending(); } }) : null)));
    }
  }

  function resolvePending(m) {
    if (m.client_msg_id && S.pending.has(m.client_msg_id)) {
      S.pending.delete(m.client_msg_id);
      return true;
    }
    return false;
  }

  /** The seq line of the open conversation: applied in order, seen ones dropped, a gap fetched (catchUp). */
  const track = window.gasdeskSocket.SeqTracker({
    apply: applyMessage,
    duplicate: (m) => { if (resolvePending(m)) renderPending(); },
    resume: () => { catchUp(); },
  });
  let merging = false;
  let applied = [];

  function applyMessage(m) {
    resolvePending(m);
    S.messages.push(m);
    applied.push(m);
    if (!merging) showApplied(nearBottom()); // released by the tracker on its own (a gap it gave up on)
  }

  /** Merge server messages into the selected transcript (the tracker orders them and drops duplicates). */
  function mergeMessages(list) {
    const stick = nearBottom();
    merging = true;
    try {
      for (const m of list) if (m.conversation_id === S.selectedId) track.accept(m);
    } finally {
      merging = false;
    }
    showApplied(stick);
  }

  function showApplied(stick) {
    const list = applied;
    applied = [];
    if (!list.length) return;
    for (const m of list) {
      $("msgs").append(renderMessage(m));
      if (m.sender === "resident") { $("typing").hidden = true; maybeSuggestCustomer(); scheduleKnowledge(); }
    }
    renderPending();
    if (stick || list.some((m) => m.sender === "agent")) scrollBottom();
    sendRead();
  }

  /** Fetch what we may have missed (gap, reconnect, state change): GET …?after_seq=last_seq. */
  async function catchUp() {
    if (!S.selectedId || S.gapFetching) return;
    S.gapFetching = true;
    const id = S.selectedId;
    try {
      const data = await api("GET", "/api/v1/conversations/" + id + "?after_seq=" + track.lastSeq);
      if (S.selectedId !== id) return;
      const before = S.conv && S.conv.customer_id;
      S.conv = data.conversation;
      renderHeader();
      S.gapFetching = false;
      mergeMessages(data.messages);
      if (before !== S.conv.customer_id) renderCustomerPanel(true);
    } catch (e) {
      if (e.status === 403 || e.status === 404) {
        if (S.transferring !== id) toast("会话 #" + id + " 已转给其他坐席或重新排队", "", 4000);
        if (S.selectedId === id) clearSelection();
      }
    } finally {
      S.gapFetching = false;
    }
  }

  function clearSelection() {
    if (S.watched) { sendFrame({ type: "unwatch", conversation_id: S.watched }); S.watched = null; }
    S.selectedId = null; S.conv = null; S.messages = [];
    track.reset(0);
    $("conv-view").hidden = true;
    $("conv-empty").hidden = false;
    $("cust-panel").replaceChildren(h("p", { class: "muted", text: "选择会话后显示客户信息" }));
    S.custFor = null;
    S.kbQuery = null;
    $("kb-panel").replaceChildren(h("p", { class: "muted", text: "选择会话后按居民的问题推荐知识" }));
    renderMine(); renderQueue();
  }

  async function selectConversation(id) {
    const token = ++S.selectToken;
    S.highlight.delete(id);
    if (S.selectedId !== id) {
      $("typing").hidden = true;
      $("canned-pop").hidden = true;
      S.custUserEdited = false; S.custAutoValue = "";
    }
    let data;
    try {
      data = await api("GET", "/api/v1/conversations/" + id);
    } catch (e) { showError(e); return; }
    if (token !== S.selectToken) return;
    if (S.watched && S.watched !== id) { sendFrame({ type: "unwatch", conversation_id: S.watched }); S.watched = null; }
    const changed = S.selectedId !== id;
    S.selectedId = id;
    S.conv = data.conversation;
    S.messages = [];
    track.reset(0);
    merging = true;
    try { for (const m of data.messages) track.accept(m); } finally { merging = false; applied = []; }
    $("conv-empty").hidden = true;
    $("conv-view").hidden = false;
    renderHeader();
    renderTranscript();
    if (IS_MANAGER && S.conv.agent_id !== ME.id && S.conv.state !== "closed") {
      sendFrame({ type: "watch", conversation_id: id });
      S.watched = id;
    }
    const row = mineRow(id);
    if (row) row.unread = 0;
    renderMine(); renderQueue();
    sendRead();
    renderCustomerPanel(changed);
    if (changed) S.kbQuery = null;
    suggestKnowledge();
    loadCanned();
    if (canWrite()) $("composer-input").focus();
  }

  function sendRead() {
    if (!S.selectedId || !S.conv || document.hidden) return;
    if (S.conv.agent_id !== ME.id) return;
    sendFrame({ type: "read", conversation_id: S.selectedId, seq: track.lastSeq });
    S.readSeq[S.selectedId] = Math.max(S.readSeq[S.selectedId] || 0, track.lastSeq);
    const row = mineRow(S.selectedId);
    if (row && row.unread) { row.unread = 0; renderMine(); }
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) sendRead(); });

  // ------------------------------------------------------------------ composer

  // The server's limit; the counter under the composer shows it, and a longer text stays in the box.
  const MAX_CHARS = P.max_message_chars;

  function sendText(text) {
    text = text.trim();
    if (!text || !canWrite()) return false;
    if (textLength(text) > MAX_CHARS) {
      toast("消息过长（最多 " + MAX_CHARS + " 字），请删减或分条发送", "error");
      return false;
    }
    const cmid = window.gasdeskSocket.newClientMsgId();
    const item = { client_msg_id: cmid, frame: { type: "message", conversation_id: S.selectedId, text } };
    S.pending.set(cmid, { conversation_id: S.selectedId, text, status: "sending", error: null, item });
    renderPending();
    scrollBottom();
    link.outbox.add(item); // sent now, or once connected; resent with the same id until acknowledged
    return true;
  }

  function findShortcut(value) {
    const v = value.trim();
    if (!v.startsWith("/")) return null;
    return S.canned.find((c) => c.shortcut && c.shortcut === v) || null;
  }

  const input = $("composer-input");
  const updateCount = window.gasdeskChatText ? window.gasdeskChatText.attachCounter(input, $("composer-count")) : () => {};
  input.addEventListener("keydown", (e) => {
    const pop = $("canned-pop");
    if (!pop.hidden && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      const items = pop.querySelectorAll(".canned-item");
      if (!items.length) return;
      S.cannedIndex = (S.cannedIndex + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items.forEach((el, i) => el.classList.toggle("active", i === S.cannedIndex));
      return;
    }
    if (e.key === "Escape" && !pop.hidden) { pop.hidden = true; return; }
    if ((e.key === "Enter" && !e.shiftKey && !e.isComposing) || (e.key === "Tab" && input.value.trim().startsWith("/"))) {
      e.preventDefault();
      const sc = findShortcut(input.value);
      if (sc) { input.value = sc.text; updateCount(); pop.hidden = true; return; }
      if (!pop.hidden && input.value.trim().startsWith("/")) {
        const active = pop.querySelectorAll(".canned-item")[S.cannedIndex];
        if (active) { active.click(); return; }
      }
      if (e.key === "Tab") return;
      if (sendText(input.value)) { input.value = ""; updateCount(); }
      pop.hidden = true;
    }
  });
  input.addEventListener("input", () => {
    const v = input.value;
    if (v.startsWith("/") && !v.includes("\n")) showCanned(v.trim());
    else if (!$("canned-pop").dataset.manual) $("canned-pop").hidden = true;
    const now = Date.now();
    if (canWrite() && v && now - S.lastTypingSent > P.typing_interval_ms) {
      S.lastTypingSent = now;
      sendFrame({ type: "typing", conversation_id: S.selectedId });
    }
  });
  $("btn-send").addEventListener("click", () => {
    const sc = findShortcut(input.value);
    if (sc) { input.value = sc.text; updateCount(); return; }
    if (sendText(input.value)) { input.value = ""; updateCount(); }
    input.focus();
  });

  async function loadCanned() {
    const id = S.selectedId;
    if (!id || !S.conv || S.conv.state === "closed") return;
    try {
      const list = await api("GET", "/api/v1/canned-replies?conversation_id=" + id);
      if (S.selectedId === id) { S.canned = list; S.cannedFor = id; }
    } catch (e) { /* agents may not read it (e.g. not theirs); the picker stays empty */ }
  }

  function showCanned(filter, manual) {
    const pop = $("canned-pop");
    const f = (filter || "").toLowerCase();
    const items = S.canned.filter((c) => !f || f === "/" || (c.shortcut || "").toLowerCase().startsWith(f) ||
      (!f.startsWith("/") && (c.title.includes(filter) || c.text.includes(filter))));
    pop.replaceChildren();
    pop.dataset.manual = manual ? "1" : "";
    S.cannedIndex = 0;
    if (!items.length) { pop.append(h("div", { class: "canned-item muted", text: S.canned.length ? "没有匹配的快捷回复" : "暂无快捷回复" })); }
    items.forEach((c, i) => pop.append(h("div", {
      class: "canned-item" + (i === 0 ? " active" : ""), role: "option", dataset: { shortcut: c.shortcut || "" },
      onmousedown: (e) => e.preventDefault(),
      onclick: () => {
        const v = input.value;
        input.value = v.trim().startsWith("/") ? c.text : (v ? v + (v.endsWith(" ") ? "" : " ") : "") + c.text;
        updateCount();
        pop.hidden = true;
        input.focus();
      },
    }, h("span", { class: "t", text: c.title }), c.shortcut ? h("span", { class: "k", text: c.shortcut }) : null,
    h("span", { class: "x", text: c.text }))));
    pop.hidden = false;
  }

  $("btn-canned").addEventListener("click", async () => {
    const pop = $("canned-pop");
    if (!pop.hidden) { pop.hidden = true; return; }
    if (S.cannedFor !== S.selectedId) await loadCanned();
    showCanned("", true);
  });
  document.addEventListener("click", (e) => {
    if (!e.target.closest("#canned-pop, #btn-canned, #composer-input")) $("canned-pop").hidden = true;
  });

  // ------------------------------------------------------------------ accept / transfer / close

  $("btn-accept").addEventListener("click", (e) => { if (S.selectedId) acceptConversation(S.selectedId, e.currentTarget); });

  function confirmDialog(text) {
    const dlg = $("confirm-dialog");
    $("confirm-text").textContent = text;
    return new Promise((resolve) => {
      dlg.returnValue = "";
      dlg.addEventListener("close", () => resolve(dlg.returnValue === "yes"), { once: true });
      dlg.showModal();
    });
  }

  $("btn-close").addEventListener("click", async () => {
    const id = S.selectedId;
    if (!id) return;
    if (!(await confirmDialog("确定结束会话 #" + id + " 吗？结束后将邀请居民对本次服务评价。"))) return;
    try {
      const wire = await api("POST", "/api/v1/conversations/" + id + "/close");
      toast("会话已结束", "ok", 1800);
      if (S.selectedId === id) { S.conv = wire; renderHeader(); catchUp(); }
      refreshLists().catch(showError);
    } catch (e) { showError(e); }
  });

  const transferDialog = $("transfer-dialog");
  $("btn-transfer").addEventListener("click", () => {
    if (S.selectedId) openTransfer(null);
  });
  /** The 转接 dialog for the open conversation, or for a phone call (the softphone's 转接: ``call`` is
   * {id, conversation_id, done}; the call's own route transfers the conversation and re-bridges the caller). */
  async function openTransfer(call) {
    S.transferCall = call;
    $("transfer-error").hidden = true;
    $("transfer-note").value = "";
    $("transfer-agents").replaceChildren(h("p", { class: "muted", text: "加载中…" }));
    $("transfer-groups").replaceChildren();
    transferDialog.showModal();
    try {
      const data = await api("GET", "/api/v1/agent/colleagues");
      const agents = data.agents.slice().sort((a, b) => ["online", "busy", "away", "offline"].indexOf(a.presence) -
        ["online", "busy", "away", "offline"].indexOf(b.presence));
      $("transfer-agents").replaceChildren(...(agents.length ? agents.map((a) => h("label", {},
        h("input", { type: "radio", name: "target", value: "agent:" + a.id }),
        h("i", { class: "dot " + a.presence }), a.name + "（" + (PRESENCE_LABELS[a.presence] || a.presence) + "）")) :
        [h("p", { class: "muted", text: "暂无其他坐席" })]));
      $("transfer-groups").replaceChildren(...data.groups.map((g) => h("label", {},
        h("input", { type: "radio", name: "target", value: "group:" + g.id }),
        g.name + (S.conv && S.conv.skill_group_id === g.id ? "（当前）" : ""))));
    } catch (e) {
      $("transfer-error").textContent = e.message;
      $("transfer-error").hidden = false;
    }
  }
  $("transfer-cancel").addEventListener("click", () => transferDialog.close());
  transferDialog.addEventListener("close", () => { S.transferCall = null; });
  $("transfer-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const call = S.transferCall;
    const id = call ? call.conversation_id : S.selectedId;
    const picked = transferDialog.querySelector("input[name=target]:checked");
    const err = $("transfer-error");
    if (!picked) { err.textContent = "请选择要转接的坐席或技能组"; err.hidden = false; return; }
    const [kind, target] = picked.value.split(":");
    const body = { note: $("transfer-note").value.trim() };
    body[kind === "agent" ? "to_agent_id" : "to_group_id"] = Number(target);
    $("transfer-submit").disabled = true;
    S.transferring = id;
    try {
      if (call) await api("POST", "/api/v1/calls/" + call.id + "/softphone/transfer", body);
      else await api("POST", "/api/v1/conversations/" + id + "/transfer", body);
      transferDialog.close();
      if (call && call.done) call.done();
      toast(kind === "agent" ? "已转接给其他坐席" : "已转到技能组，重新排队", "ok");
      if (S.selectedId === id) clearSelection();
      await refreshLists();
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
    } finally {
      $("transfer-submit").disabled = false;
      setTimeout(() => { if (S.transferring === id) S.transferring = null; }, 3000);
    }
  });

  // ------------------------------------------------------------------ right column: knowledge suggestions

  /** Search the knowledge base with the resident's last messages; a click puts the answer in the composer. */
  let kbTimer = null;
  function scheduleKnowledge() { clearTimeout(kbTimer); kbTimer = setTimeout(suggestKnowledge, 600); }

  async function suggestKnowledge() {
    const panel = $("kb-panel");
    if (!panel || !S.conv) return;
    const texts = S.messages.filter((m) => m.sender === "resident" && m.text).slice(-2).map((m) => m.text);
    const q = texts.join(" ").slice(-200);
    if (q === S.kbQuery) return;
    S.kbQuery = q;
    if (!q) { panel.replaceChildren(h("p", { class: "muted", text: "居民还没有提问" })); return; }
    const id = S.selectedId;
    let data;
    try {
      data = await api("GET", "/api/v1/kb/search?limit=3&channel=agent&q=" + encodeURIComponent(q));
    } catch (e) { panel.replaceChildren(h("p", { class: "muted", text: "知识推荐暂不可用" })); return; }
    if (S.selectedId !== id) return;
    if (!data.results.length) { panel.replaceChildren(h("p", { class: "muted", text: "没有找到相关知识" })); return; }
    panel.replaceChildren(...data.results.map((r) => h("div", { class: "kb-suggestion" },
      h("strong", { text: r.title }),
      h("p", { class: "muted", text: r.snippet }),
      h("button", { type: "button", class: "secondary kb-insert", title: "把答案放入输入框",
        onclick: () => {
          const input = $("composer-input");
          input.value = input.value.trim() ? input.value.replace(/\s*$/, "\n") + r.answer : r.answer;
          input.dispatchEvent(new Event("input", { bubbles: true }));
          input.focus();
        } }, "插入回复"))));
  }

  // ------------------------------------------------------------------ right column: customer 360

  const PHONE_RE = /(?<!\d)1[3-9]\d{9}(?!\d)/g;
  const ACCOUNT_RE = /(?<!\d)\d{8,12}(?!\d)/g;

  function detectNumber() {
    for (let i = S.messages.length - 1; i >= 0; i--) {
      const m = S.messages[i];
      if (m.sender !== "resident" || !m.text) continue;
      const text = m.text.replace(/(\d)[\s-]+(?=\d)/g, "$1");
      const phones = text.match(PHONE_RE);
      if (phones) return phones[phones.length - 1];
      const accounts = text.match(ACCOUNT_RE);
      if (accounts) return accounts[accounts.length - 1];
    }
    return null;
  }

  function maybeSuggestCustomer() {
    if (!S.conv || S.conv.customer_id) return;
    const box = $("cust-q");
    if (!box || S.custUserEdited) return;
    const found = detectNumber();
    if (found && found !== box.value) {
      box.value = found;
      S.custAutoValue = found;
      const hint = $("cust-suggest");
      if (hint) { hint.textContent = "已从对话中识别号码 " + found + "，点击「查询」查找客户"; hint.hidden = false; }
    }
  }

  function renderCustomerPanel(force) {
    const c = S.conv;
    const panel = $("cust-panel");
    if (!c) return;
    const key = c.id + ":" + (c.customer_id || "-");
    if (!force && S.custFor === key) return;
    S.custFor = key;
    loadTags(c.id);
    if (c.customer_id) { renderCustomer360(c.customer_id); return; }
    renderCustomerSearch(panel);
  }

  /** The tag strip above the customer panel: 陌生号码, the conversation's and the customer's tags; add and remove. */
  async function loadTags(convId) {
    const box = $("cust-tags");
    if (!box) return;
    let t;
    try { t = await api("GET", "/api/v1/tags/conversations/" + convId); } catch (e) { box.replaceChildren(); return; }
    if (S.selectedId !== convId) return;
    const remove = async (tag) => {
      try { await api("POST", "/api/v1/tags/assignments/" + tag.id + "/remove"); toast("已移除标签", "ok", 1500); } catch (e) { showError(e); }
      loadTags(convId); loadBadges();
    };
    const mine = canWrite();
    const input = h("input", { type: "text", id: "tag-input", maxlength: "20", placeholder: "添加标签", list: "tag-known" });
    const target = h("select", { id: "tag-target", "aria-label": "标签对象" },
      h("option", { value: "conversation", text: "本会话" }),
      S.conv && S.conv.customer_id ? h("option", { value: "customer", text: "客户" }) : null);
    const add = async () => {
      const tag = input.value.trim();
      if (!tag) return;
      const body = target.value === "customer" ? { tag, customer_id: S.conv.customer_id } : { tag, conversation_id: convId };
      try { await api("POST", "/api/v1/tags/assignments", body); toast("已添加标签", "ok", 1500); } catch (e) { showError(e); return; }
      loadTags(convId); loadBadges();
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); add(); } });
    box.replaceChildren(
      t.stranger ? h("div", { class: "stranger-banner", id: "stranger-banner", role: "status" },
        h("span", { class: "pill stranger", text: "陌生号码" }), " 首次联系且未关联客户，请核实身份后关联客户") : null,
      h("div", { class: "tag-row" }, h("span", { class: "muted", text: "会话标签：" }),
        ...(t.conversation_tags.length ? t.conversation_tags.map((x) => tagChip(x, mine ? remove : null)) : [h("span", { class: "muted", text: "无" })])),
      S.conv && S.conv.customer_id ? h("div", { class: "tag-row", id: "cust-tag-row" }, h("span", { class: "muted", text: "客户标签：" }),
        ...(t.customer_tags.length ? t.customer_tags.map((x) => tagChip(x, remove)) : [h("span", { class: "muted", text: "无" })])) : null,
      h("datalist", { id: "tag-known" }, ...t.known_tags.map((k) => h("option", { value: k }))),
      mine ? h("div", { class: "tag-add" }, input, target, h("button", { type: "button", class: "secondary", id: "tag-add-btn", text: "添加", onclick: add })) : null);
  }

  function renderCustomerSearch(panel, note) {
    const q = h("input", { type: "search", id: "cust-q", placeholder: "手机号 / 户号 / 地址 / 姓名",
      oninput: () => { S.custUserEdited = true; } });
    const results = h("div", { id: "cust-results" });
    const doSearch = async () => {
      const value = q.value.trim();
      if (!value) { results.replaceChildren(h("p", { class: "muted", text: "请输入查询条件" })); return; }
      results.replaceChildren(h("p", { class: "muted", text: "查询中…" }));
      try {
        // POST: phone numbers and 户号 stay out of URLs and access logs
        const list = await api("POST", "/api/v1/customers/search", { q: value });
        renderResults(results, list);
      } catch (e) { results.replaceChildren(h("p", { class: "error", text: e.message })); }
    };
    q.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); doSearch(); } });
    panel.replaceChildren(
      note ? h("p", { class: "muted", text: note }) : h("p", { class: "muted", text: "该会话尚未关联客户，可按手机号、户号、地址或姓名查找：" }),
      h("div", { class: "cust-search" }, q, h("button", { type: "button", id: "cust-search-btn", text: "查询", onclick: doSearch })),
      h("p", { class: "suggest", id: "cust-suggest", hidden: true }),
      results);
    maybeSuggestCustomer();
  }

  function renderResults(box, list) {
    if (!list.length) { box.replaceChildren(h("p", { class: "muted", text: "未找到匹配的客户" })); return; }
    box.replaceChildren(...list.map((c) => h("div", { class: "result", dataset: { id: c.id } },
      h("strong", { text: c.name }), " ", ...(c.tags || []).map((t) => h("span", { class: "tag", text: t })),
      h("div", { class: "muted", text: "电话：" + (c.phones || []).join("、") }),
      h("div", { text: "户号：" + ((c.account_nos || []).join("、") || "无") }),
      (c.addresses || []).length ? h("div", { class: "muted", text: c.addresses.join("；") }) : null,
      h("div", { class: "actions" }, h("button", { type: "button", class: "link-customer", text: "关联此客户",
        onclick: (e) => linkCustomer(c.id, e.currentTarget) })))));
  }

  async function linkCustomer(customerId, button) {
    const id = S.selectedId;
    if (!id) return;
    if (button) button.disabled = true;
    try {
      const wire = await api("PUT", "/api/v1/conversations/" + id + "/customer", { customer_id: customerId });
      toast("已关联客户", "ok", 1800);
      if (S.selectedId === id) {
        S.conv = wire;
        renderHeader();
        renderCustomerPanel(true);
        loadCanned(); // variables such as {客户称呼} and {户号} now resolve
      }
      scheduleRefresh();
    } catch (e) {
      showError(e);
      if (button) button.disabled = false;
    }
  }

  function money(v) {
    if (v === null || v === undefined || v === "") return "-";
    return "¥" + v;
  }

  async function renderCustomer360(customerId) {
    const panel = $("cust-panel");
    const convId = S.selectedId;
    panel.replaceChildren(h("p", { class: "muted", text: "加载客户信息…" }));
    let c, hist, outages;
    try {
      [c, hist, outages] = await Promise.all([api("GET", "/api/v1/customers/" + customerId),
        api("GET", "/api/v1/customers/" + customerId + "/conversations").catch(() => []),
        api("GET", "/api/v1/outages/for-customer/" + customerId).catch(() => [])]);
    } catch (e) {
      if (S.selectedId === convId) panel.replaceChildren(h("p", { class: "error", text: e.message }));
      return;
    }
    if (S.selectedId !== convId) return;
    const accounts = (c.accounts || []).map((a, i) => {
      const b = (c.balances || [])[i] || {};
      const arrears = b.arrears && Number(b.arrears) > 0;
      return h("div", { class: "cust-card account" },
        h("h4", {}, "户号 ", h("span", { class: "account-no", text: a.account_no }),
          h("span", { class: "pill" + (a.status === "active" ? "" : " closed"), text: a.status_label || a.status })),
        h("dl", {},
          h("dt", { text: "类型" }), h("dd", { text: (a.account_type_label || a.account_type) + " · " +
            [a.has_gas ? "燃气" : null, a.has_heating ? "热力" : null].filter(Boolean).join(" / ") }),
          h("dt", { text: "表具" }), h("dd", { text: (a.meter_type_label || "-") + (a.meter_serial ? " " + a.meter_serial : "") }),
          a.heating_area_m2 ? h("dt", { text: "采暖面积" }) : null, a.heating_area_m2 ? h("dd", { text: a.heating_area_m2 + " m²" }) : null,
          h("dt", { text: "地址" }), h("dd", { text: a.address || "-" }),
          ...(b.error ? [h("dt", { text: "账单" }), h("dd", { class: "muted", text: b.error })] : [
            h("dt", { text: "余额" }), h("dd", { class: "balance", text: money(b.balance) }),
            h("dt", { text: "欠费" }), h("dd", { class: arrears ? "money-bad" : "", text: money(b.arrears) }),
            h("dt", { text: "最近缴费" }), h("dd", { text: b.last_payment_at ? (b.last_payment_at.slice(0, 10) + " " + money(b.last_payment_amount)) : "-" }),
          ])));
    });
    panel.replaceChildren(
      // Outage notices covering the customer's address: the likeliest answer to "why no gas/heating".
      ...((outages || []).length ? [h("div", { class: "cust-card outage-notices", id: "cust-outages" },
        h("h4", { text: "停气停暖公告" }), ...outages.map((o) => h("p", { class: "outage-notice", text: o.text })))] : []),
      h("div", { class: "cust-card", id: "cust-360" },
        h("h4", {}, h("span", { class: "cust-name", text: c.name }), ...(c.tags || []).map((t) => h("span", { class: "tag", text: t }))),
        h("dl", {},
          h("dt", { text: "电话" }), h("dd", { text: (c.phones || []).join("、") || "-" }),
          h("dt", { text: "身份证" }), h("dd", { text: c.id_card_masked || "未登记" }),
          h("dt", { text: "地址" }), h("dd", {}, ...((c.addresses || []).length ? c.addresses.map((a) => h("div", { text: a.display })) : ["未登记"]))),
        h("div", { style: "margin-top:.4rem;display:flex;gap:.8rem" },
          h("a", { href: "/customers/" + c.id, target: "_blank", rel: "noopener", text: "完整客户档案" }),
          h("button", { type: "button", class: "link-btn", text: "更换关联客户",
            onclick: () => renderCustomerSearch(panel, "当前关联：" + c.name + "。查找并关联其他客户：") }))),
      h("h3", { text: "最近工单" }),
      (c.tickets || []).length ? h("ul", { class: "work-list", id: "cust-tickets" }, c.tickets.map((t) => h("li", {
        class: "work-item" + (t.priority === "urgent" ? " urgent" : "") + (t.conversation_id === convId ? " current" : "") },
        h("div", { class: "row" },
          h("a", { href: t.link, target: "_blank", rel: "noopener", class: "ticket-no", text: t.number }),
          h("span", { class: "pill", text: t.type_label }),
          t.priority === "urgent" ? h("span", { class: "pill urgent", text: t.priority_label }) : null,
          h("span", { class: "right pill" + (["resolved", "closed", "cancelled"].includes(t.status) ? " closed" : ""),
            text: t.status_label })),
        h("div", { class: "muted", text: fmtTime(t.created_at) + " · " + t.title +
          (t.conversation_id === convId ? "（本次会话）" : "") })))) : h("p", { class: "muted", text: "暂无工单" }),
      h("h3", { text: "预约" }),
      (c.appointments || []).length ? h("ul", { class: "work-list", id: "cust-appointments" }, c.appointments.map((a) => h("li", {
        class: "work-item" },
        h("div", { class: "row" }, h("strong", { text: a.service_name }),
          h("span", { class: "right pill" + (a.status === "booked" ? "" : " closed"), text: a.status_label })),
        h("div", { class: "muted" }, fmtSlot(a.slot_start, a.slot_end) + " · 工单 ",
          h("a", { href: a.link, target: "_blank", rel: "noopener", text: a.ticket_number }))))) :
        h("p", { class: "muted", text: "暂无预约" }),
      h("h3", { text: "账户" }),
      ...(accounts.length ? accounts : [h("p", { class: "muted", text: "暂无账户" })]),
      h("h3", { text: "历史会话" }),
      hist.length ? h("ul", { class: "history-list" }, hist.map((x) => h("li", { class: x.id === convId ? "current" : "" },
        h("div", { text: fmtTime(x.created_at) + " · " + x.channel_label + " · " + x.state_label +
          (x.rating ? " · 评分 " + x.rating : "") + (x.id === convId ? "（当前）" : "") }),
        x.preview ? h("div", { class: "muted", text: x.preview }) : null))) : h("p", { class: "muted", text: "暂无历史会话" }));
  }

  // ------------------------------------------------------------------ WebSocket

  function setConnected(ok) {
    const st = $("conn-state");
    st.textContent = ok ? "实时连接正常" : "未连接";
    st.className = "conn-state " + (ok ? "ok" : "bad");
    $("conn-banner").hidden = ok || !link.everReady();
  }

  function sendFrame(frame) {
    return link.send(frame); // false while disconnected: replies go through the outbox and are resent
  }

  function pendingOf(item) { return S.pending.get(item.client_msg_id); }

  const link = window.gasdeskSocket.connect({
    path: "/ws/agent",
    onReady: (again) => {
      setConnected(true);
      if (S.watched) sendFrame({ type: "watch", conversation_id: S.watched });
      if (again) { refreshLists().catch(() => {}); catchUp(); }
    },
    onFrame,
    onClose: (ev, info) => {
      setConnected(false);
      const banner = $("conn-banner");
      if (info.final) {
        banner.textContent = ev.code === P.close_codes.unauthorized ? "登录已过期，请重新登录" : "您的账号无权使用坐席工作台";
        banner.hidden = false;
        return;
      }
      banner.textContent = "连接已断开，正在重连…";
      banner.hidden = false;
    },
    outbox: {
      acked: (item, f) => {
        const p = pendingOf(item);
        if (!p) return;
        // Shown as 已送达 until its message arrives (then it joins the transcript), unless that happened already.
        if (p.conversation_id === S.selectedId && f.seq <= track.lastSeq) S.pending.delete(item.client_msg_id);
        else if (p.conversation_id !== S.selectedId) S.pending.delete(item.client_msg_id);
        else { p.status = "acked"; p.seq = f.seq; track.expect(f.seq); }
        renderPending();
      },
      failed: (item, f) => {
        const p = pendingOf(item);
        if (p) { p.status = "failed"; p.error = f.message; renderPending(); }
        toast(f.message || "发送失败", "error");
      },
      delayed: (item, f) => { toast(f.message || "发送过于频繁，稍后自动重发", "error"); },
    },
  });

  function onFrame(f) {
    switch (f.type) {
      case "hello":
        break;
      case "message": {
        const m = f.message;
        if (!m) break;
        if (m.conversation_id === S.selectedId) mergeMessages([m]);
        else {
          const row = mineRow(m.conversation_id);
          if (row && m.sender === "resident" && m.seq > (row.last_seq || 0)) { row.unread = (row.unread || 0) + 1; }
          if (row) { row.last_seq = Math.max(row.last_seq || 0, m.seq); row.last_message = { text: (m.text || "").slice(0, 80), sender: m.sender, at: m.created_at }; renderMine(); }
          scheduleRefresh();
        }
        if (m.conversation_id === S.selectedId) {
          const row = mineRow(m.conversation_id);
          if (row) { row.last_message = { text: (m.text || "").slice(0, 80), sender: m.sender, at: m.created_at }; renderMine(); }
        }
        break;
      }
      case "error": // errors of replies in the outbox went to it; the rest are shown
        toast(f.message || "操作失败", "error");
        if (f.request_type && f.request_type.startsWith("video_")) {
          window.dispatchEvent(new CustomEvent("gasdesk:video", { detail: { kind: "error", code: f.code, request_type: f.request_type } }));
        }
        break;
      case "typing":
        if (f.conversation_id === S.selectedId && f.from === "resident") {
          $("typing").hidden = false;
          clearTimeout(S.typingTimer);
          S.typingTimer = setTimeout(() => { $("typing").hidden = true; }, 5000);
        }
        break;
      case "assigned":
        if (f.agent_id === ME.id) notifyAssigned(f.conversation_id);
        scheduleRefresh();
        break;
      case "state":
        if (f.conversation_id === S.selectedId) catchUp();
        scheduleRefresh();
        break;
      case "presence":
        if (f.user_id === ME.id) { S.presence = f.presence; renderPresence(); }
        break;
      case "queue_changed":
      case "conversations_changed":
      case "left_message":
        scheduleRefresh();
        break;
      case "call_ringing":
      case "call_offered":
      case "call_offer_withdrawn":
      case "call_ended":
        // the softphone (telephony/static/softphone.js), when this console has one
        window.dispatchEvent(new CustomEvent("gasdesk:call", { detail: f }));
        break;
      case "video": // video assist (video/static/agent.js)
        window.dispatchEvent(new CustomEvent("gasdesk:video", { detail: f }));
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ start

  // fill the window below the site header, whatever its height
  function fitHeight() {
    const top = root.getBoundingClientRect().top + window.scrollY;
    root.style.height = Math.max(560, window.innerHeight - top) + "px";
  }
  window.addEventListener("resize", fitHeight);
  fitHeight();

  loadPresence().catch(showError);
  refreshLists().catch(showError);
  // for debugging and tests: the state (with the socket and whether it reconnects), and a way to reconnect
  Object.defineProperties(S, {
    ws: { get: () => link.socket() },
    stopped: { get: () => link.isStopped(), set: (stop) => { if (stop) link.stop(); else link.start(); } },
  });
  window.gasdeskAgent = { state: S, select: selectConversation, link, connect: () => link.start(),
    api, toast, h, fmtTime, openTransfer, refresh: () => refreshLists() };
})();
