/* gasdesk resident chat (web/H5, iframe behind widget.js, WeChat webview).
 * Protocol: docs/chat-protocol.md. Plain ES2017, no build step, no external resources.
 *
 * Reliability model:
 *  - every outgoing message has a client_msg_id and sits in an outbox (persisted in localStorage)
 *    until the server acknowledges it; after a reconnect the outbox is resent with the same ids
 *    (the server dedupes);
 *  - incoming messages are applied strictly in seq order; seq <= last_seq is a duplicate, a jump
 *    means a gap and triggers `resume`;
 *  - the applied transcript is cached in localStorage so a reload renders at once and resumes with
 *    `after_seq` (no duplicates, no full replay).
 */
(function () {
  "use strict";

  var KEY_VISITOR = "gasdesk.visitor";
  var KEY_CHAT = "gasdesk.chat";
  var KEY_OUTBOX = "gasdesk.outbox";
  var CACHE_LIMIT = 200;
  var ACK_TIMEOUT_MS = 15000;
  var TYPING_EVERY_MS = 2000;
  var MB = 1024 * 1024;
  // Mirrors gasdesk/conversations/attachments.py ALLOWED.
  var LIMITS = {
    jpg: ["image", 5 * MB], jpeg: ["image", 5 * MB], png: ["image", 5 * MB], gif: ["image", 5 * MB],
    webp: ["image", 5 * MB], pdf: ["file", 10 * MB], docx: ["file", 10 * MB], xlsx: ["file", 10 * MB],
    txt: ["file", 1 * MB]
  };
  var STATUS = {
    bot: "智能客服小暖为您服务",
    queued: "排队中，请稍候",
    assigned: "正在为您接通人工客服…",
    closed: "会话已结束"
  };

  // ------------------------------------------------------------------ storage (iframes may block it)
  var memory = {};
  var store = {
    get: function (key) {
      var raw = null;
      try { raw = window.localStorage.getItem(key); } catch (e) { raw = memory[key] || null; }
      if (raw == null) raw = memory[key] || null;
      if (raw == null) return null;
      try { return JSON.parse(raw); } catch (e) { return raw; }
    },
    set: function (key, value) {
      var raw = JSON.stringify(value);
      memory[key] = raw;
      try { window.localStorage.setItem(key, raw); } catch (e) { /* quota or blocked: memory only */ }
    },
    remove: function (key) {
      delete memory[key];
      try { window.localStorage.removeItem(key); } catch (e) { /* ignore */ }
    }
  };

  // ------------------------------------------------------------------ helpers
  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v == null || v === false) return;
        if (k === "text") node.textContent = v;
        else if (k === "className") node.className = v;
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c == null) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function uuid() {
    var c = window.crypto || window.msCrypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Asia/Shanghai is UTC+8 all year (no DST): no Intl time-zone support needed in old webviews.
  function shanghai(iso) {
    var t = Date.parse(iso);
    return isNaN(t) ? null : new Date(t + 8 * 3600 * 1000);
  }
  function fmtTime(iso) {
    var d = shanghai(iso);
    return d ? pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) : "";
  }
  function fmtDateTime(iso) {
    var d = shanghai(iso);
    if (!d) return "";
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }
  function fmtSize(n) {
    if (!(n >= 0)) return "";
    if (n < 1024) return n + " B";
    if (n < MB) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + " KB";
    return (n / MB).toFixed(1) + " MB";
  }
  // Message text with its http(s) addresses as links (static/chat-text.js; plain text if it failed to load).
  function richText(text) {
    var T = window.gasdeskChatText;
    return T ? T.linkify(text || "") : document.createTextNode(text || "");
  }
  function textLength(text) {
    var T = window.gasdeskChatText;
    return T ? T.length(text) : (text || "").length;
  }
  function extOf(name) {
    var m = /\.([^.\/\\]+)$/.exec(name || "");
    return m ? m[1].toLowerCase() : "";
  }

  // ------------------------------------------------------------------ state
  var S = {
    token: null,
    conversationId: null,
    lastSeq: 0,
    convState: null,
    agentName: null,
    rating: null,
    msgs: {},            // seq -> message (applied, contiguous up to lastSeq)
    buffer: {},          // seq -> message waiting for a gap to fill
    outbox: [],          // unacknowledged outgoing messages
    ws: null,
    gen: 0,              // socket generation (stale socket events are ignored)
    welcomed: false,
    everWelcomed: false,
    attempt: 0,
    reconnectTimer: null,
    resumeTimer: null,
    resumeTries: 0,
    lastTypingSent: 0,
    typingTimer: null,
    maxChars: 2000,      // the server's limit, read from the page (data-max-chars) at start
    pendingAction: null, // a form waiting for the server (errors without client_msg_id go there)
    identified: null,    // {conversationId, name}
    badToken: 0
  };

  var ui = {};

  function loadState() {
    var v = store.get(KEY_VISITOR);
    S.token = v && typeof v === "object" ? v.token : (typeof v === "string" ? v : null);
    var chat = store.get(KEY_CHAT);
    if (chat && typeof chat === "object" && chat.conversation_id) {
      S.conversationId = chat.conversation_id;
      S.lastSeq = chat.last_seq || 0;
      S.convState = chat.state || null;
      S.agentName = chat.agent_name || null;
      S.rating = chat.rating == null ? null : chat.rating;
      (chat.messages || []).forEach(function (m) {
        if (m && m.seq <= S.lastSeq && m.conversation_id === S.conversationId) S.msgs[m.seq] = m;
      });
    }
    var box = store.get(KEY_OUTBOX);
    S.outbox = Array.isArray(box) ? box.filter(function (i) { return i && i.client_msg_id; }) : [];
    S.outbox.forEach(function (i) { i.sentGen = 0; i.sentAt = 0; });
  }

  var saveTimer = null;
  function saveChat(now) {
    if (saveTimer) { clearTimeout(saveTimer); saveTimer = null; }
    var write = function () {
      saveTimer = null;
      if (!S.conversationId) { store.remove(KEY_CHAT); return; }
      var seqs = Object.keys(S.msgs).map(Number).sort(function (a, b) { return a - b; }).slice(-CACHE_LIMIT);
      store.set(KEY_CHAT, {
        conversation_id: S.conversationId, last_seq: S.lastSeq, state: S.convState, agent_name: S.agentName,
        rating: S.rating, messages: seqs.map(function (s) { return S.msgs[s]; })
      });
    };
    if (now) write(); else saveTimer = setTimeout(write, 150);
  }

  function saveOutbox() {
    store.set(KEY_OUTBOX, S.outbox.map(function (i) {
      return { client_msg_id: i.client_msg_id, conversation_id: i.conversation_id, text: i.text,
        content_type: i.content_type, payload: i.payload, local: i.local || null, created_at: i.created_at };
    }));
  }

  // ------------------------------------------------------------------ status and banners
  function setStatus(text) { ui.status.textContent = text; }

  var connOkTimer = null;
  function showConn(text, ok) {
    if (connOkTimer) { clearTimeout(connOkTimer); connOkTimer = null; }
    if (!text) { ui.connBanner.hidden = true; return; }
    ui.connBanner.textContent = text;
    ui.connBanner.classList.toggle("gd-ok", !!ok);
    ui.connBanner.hidden = false;
    if (ok) connOkTimer = setTimeout(function () { ui.connBanner.hidden = true; }, 1800);
  }

  var errorTimer = null;
  function showError(text) {
    if (errorTimer) clearTimeout(errorTimer);
    ui.errorText.textContent = text;
    ui.errorBar.hidden = false;
    errorTimer = setTimeout(function () { ui.errorBar.hidden = true; }, 8000);
  }

  function showQueue(frame) {
    if (!frame) { ui.queueBanner.hidden = true; return; }
    var ahead = Math.max(0, (frame.position || 1) - 1);
    var minutes = Math.max(1, Math.round((frame.estimated_wait_s || 0) / 60));
    ui.queueBanner.textContent = "排队中：您前面还有 " + ahead + " 位，预计等待约 " + minutes + " 分钟";
    ui.queueBanner.hidden = false;
  }

  function applyConvState(state, extra) {
    extra = extra || {};
    var previous = S.convState;
    S.convState = state;
    if ("agentName" in extra) S.agentName = extra.agentName;
    if ("accepted" in extra) S.accepted = extra.accepted;
    if (state !== "assigned") S.accepted = false;
    if (state === "bot" || state === "closed" || state === "queued") {
      if (state !== "closed") S.agentName = null;
    }
    if (state !== "queued") showQueue(null);
    var status = STATUS[state] || "在线客服";
    if (state === "assigned" && S.agentName && S.accepted !== false) status = "客服 " + S.agentName + " 为您服务";
    setStatus(status);
    document.body.classList.toggle("gd-state-bot", state === "bot");
    var closed = state === "closed";
    ui.sendForm.hidden = closed;
    ui.restart.hidden = !closed;
    ui.btnClose.hidden = closed || !state;
    if (closed) hideTyping();
    refreshQuick();
    if (previous !== state) saveChat();
  }

  // ------------------------------------------------------------------ rendering
  function isNearBottom() {
    var m = ui.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 140;
  }
  function scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function fileUrl(payload) {
    var url = payload && payload.url;
    if (!url) return "";
    if (url.indexOf("blob:") === 0 || url.indexOf("data:") === 0) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "v=" + encodeURIComponent(S.token || "");
  }

  function openLightbox(src, alt) {
    ui.lightboxImg.src = src;
    ui.lightboxImg.alt = alt || "图片";
    ui.lightbox.hidden = false;
    ui.lightbox.dataset.returnFocus = "";
    ui.lightboxClose.focus();
  }

  function mediaBody(m) {
    var p = m.payload || {};
    if (m.type === "image") {
      var src = fileUrl(p);
      var img = el("img", { src: src, alt: p.name || "图片", loading: "lazy" });
      var btn = el("button", { type: "button", className: "gd-thumb", "aria-label": "查看大图：" + (p.name || "图片"),
        onclick: function () { openLightbox(src, p.name); } }, [img]);
      return el("div", { className: "gd-bubble gd-media" }, [btn]);
    }
    var ext = extOf(p.name) || "file";
    var href = fileUrl(p);
    var info = el("div", { className: "gd-file-info" }, [
      el("span", { className: "gd-file-name", text: p.name || m.text || "文件", title: p.name || "" }),
      el("span", { className: "gd-file-size", text: fmtSize(p.size) }),
      href && href.indexOf("blob:") !== 0
        ? el("a", { href: href, download: p.name || "", target: "_blank", rel: "noopener",
          "aria-label": "下载 " + (p.name || "文件") }, ["下载"])
        : null
    ]);
    return el("div", { className: "gd-bubble gd-media" }, [
      el("div", { className: "gd-file" }, [el("span", { className: "gd-file-icon", "aria-hidden": "true", text: ext.slice(0, 4) }), info])
    ]);
  }

  function laterEvent(seq, name) {
    return Object.keys(S.msgs).some(function (k) {
      var m = S.msgs[k];
      return m.seq > seq && m.payload && m.payload.event === name;
    });
  }

  function cardDone(text) { return el("p", { className: "gd-card-done", role: "status", text: text }); }

  function leaveMessageCard(m) {
    var card = m.payload.card;
    var node = el("div", { className: "gd-card", "data-card": "leave_message" });
    node.appendChild(el("p", { text: m.text || "您可以留下联系方式和问题，我们会尽快联系您。" }));
    if (laterEvent(m.seq, "message_left")) {
      node.appendChild(cardDone("留言已提交，我们会尽快与您联系。"));
      node.classList.add("gd-done");
      return node;
    }
    var uid = "lm" + m.seq;
    var name = el("input", { id: uid + "-name", name: "name", maxlength: "30", autocomplete: "name" });
    var phone = el("input", { id: uid + "-phone", name: "phone", type: "tel", inputmode: "tel", maxlength: "20",
      autocomplete: "tel", required: true, "aria-required": "true" });
    var content = el("textarea", { id: uid + "-content", name: "content", maxlength: "2000", required: true,
      "aria-required": "true", rows: "3" });
    var err = el("p", { className: "gd-card-error", role: "alert", hidden: true });
    var submit = el("button", { type: "submit", className: "gd-primary" }, ["提交留言"]);
    var form = el("form", { className: "gd-card-form", novalidate: true }, [
      el("label", { "for": uid + "-name" }, ["称呼（选填）", name]),
      el("label", { "for": uid + "-phone" }, [el("span", null, ["手机号 ", el("span", { className: "gd-req", text: "*" })]), phone]),
      el("label", { "for": uid + "-content" }, [el("span", null, ["留言内容 ", el("span", { className: "gd-req", text: "*" })]), content]),
      err, submit
    ]);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      err.hidden = true;
      var phoneV = phone.value.trim();
      var contentV = content.value.trim();
      var problem = !phoneV ? "请填写手机号" : (!/^[0-9０-９\s\-+()（）]{7,20}$/.test(phoneV) ? "请填写正确的手机号（11 位）或带区号的固话"
        : (!contentV ? "请填写留言内容" : null));
      if (problem) { err.textContent = problem; err.hidden = false; (phoneV && !contentV ? content : phone).focus(); return; }
      if (!sendFrame({ type: "leave_message", name: name.value.trim() || null, phone: phoneV, content: contentV,
        reason: card.reason || "no_agent", skill_group_id: card.skill_group_id || null })) {
        err.textContent = "网络未连接，请稍后再试"; err.hidden = false; return;
      }
      submit.disabled = true; submit.textContent = "提交中…";
      waitFor(err, submit, "提交留言");
    });
    node.appendChild(form);
    return node;
  }

  function ratingCard(m) {
    var p = m.payload || {};
    var node = el("div", { className: "gd-card", "data-card": "rating" });
    node.appendChild(el("h3", { text: p.title || m.text || "请为本次服务评价" }));
    if (S.rating != null || laterEvent(m.seq, "rated")) {
      node.appendChild(cardDone("感谢您的评价"));
      node.classList.add("gd-done");
      return node;
    }
    var labels = p.labels || {};
    var scale = p.scale || [1, 2, 3, 4, 5];
    var chosen = 0;
    var buttons = [];
    var submit = el("button", { type: "submit", className: "gd-primary", disabled: true }, ["提交评价"]);
    var stars = el("div", { className: "gd-stars", role: "group", "aria-label": "满意度评分" });
    scale.forEach(function (score) {
      var label = labels[String(score)] || (score + " 分");
      var b = el("button", { type: "button", "aria-pressed": "false", "aria-label": score + " 分：" + label,
        "data-score": String(score) }, [el("span", { className: "gd-star", "aria-hidden": "true", text: "★" }), el("span", { text: label })]);
      b.addEventListener("click", function () {
        chosen = score;
        buttons.forEach(function (x) {
          var s = Number(x.getAttribute("data-score"));
          x.classList.toggle("gd-on", s <= score);
          x.setAttribute("aria-pressed", s === score ? "true" : "false");
        });
        submit.disabled = false;
      });
      buttons.push(b);
      stars.appendChild(b);
    });
    var uid = "rt" + m.seq;
    var comment = el("textarea", { id: uid + "-comment", maxlength: "500", rows: "2", placeholder: "说说您的感受（选填）" });
    var err = el("p", { className: "gd-card-error", role: "alert", hidden: true });
    var form = el("form", { novalidate: true }, [stars, el("label", { "for": uid + "-comment" }, ["评价内容（选填）", comment]), err, submit]);
    form.style.display = "flex"; form.style.flexDirection = "column"; form.style.gap = ".55rem";
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!chosen) { err.textContent = "请先选择评分"; err.hidden = false; return; }
      if (!sendFrame({ type: "rate", score: chosen, comment: comment.value.trim() })) {
        err.textContent = "网络未连接，请稍后再试"; err.hidden = false; return;
      }
      submit.disabled = true; submit.textContent = "提交中…";
      waitFor(err, submit, "提交评价");
    });
    node.appendChild(form);
    return node;
  }

  /** 回访 survey of a resolved ticket: 1–5, solved yes/no, comment → followup_answer. */
  function followupCard(m) {
    var card = m.payload.card;
    var node = el("div", { className: "gd-card", "data-card": "followup" });
    node.appendChild(el("h3", { text: card.title || "回访" }));
    if (laterEvent(m.seq, "followup_answered")) {
      node.appendChild(cardDone("感谢您参与回访"));
      node.classList.add("gd-done");
      return node;
    }
    var labels = card.labels || {};
    var chosen = 0;
    var solved = null;
    var buttons = [];
    var submit = el("button", { type: "submit", className: "gd-primary", disabled: true }, ["提交回访"]);
    var stars = el("div", { className: "gd-stars", role: "group", "aria-label": (card.questions || {}).score || "满意度评分" });
    [1, 2, 3, 4, 5].forEach(function (score) {
      var b = el("button", { type: "button", "aria-pressed": "false", "data-score": String(score),
        "aria-label": score + " 分：" + (labels[String(score)] || "") },
        [el("span", { className: "gd-star", "aria-hidden": "true", text: "★" }), el("span", { text: labels[String(score)] || (score + " 分") })]);
      b.addEventListener("click", function () {
        chosen = score;
        buttons.forEach(function (x) {
          var v = Number(x.getAttribute("data-score"));
          x.classList.toggle("gd-on", v <= score);
          x.setAttribute("aria-pressed", v === score ? "true" : "false");
        });
        submit.disabled = solved === null;
      });
      buttons.push(b);
      stars.appendChild(b);
    });
    var solvedGroup = el("div", { className: "gd-quick", role: "group", "aria-label": (card.questions || {}).solved || "问题是否已解决" });
    [["yes", "已解决"], ["no", "未解决"]].forEach(function (pair) {
      var b = el("button", { type: "button", "data-solved": pair[0], "aria-pressed": "false" }, [pair[1]]);
      b.addEventListener("click", function () {
        solved = pair[0] === "yes";
        Array.prototype.forEach.call(solvedGroup.children, function (x) {
          x.setAttribute("aria-pressed", x === b ? "true" : "false");
          x.classList.toggle("gd-on", x === b);
        });
        submit.disabled = !chosen;
      });
      solvedGroup.appendChild(b);
    });
    var uid = "fu" + m.seq;
    var comment = el("textarea", { id: uid + "-comment", maxlength: "500", rows: "2", placeholder: "您的意见或建议（选填）" });
    var err = el("p", { className: "gd-card-error", role: "alert", hidden: true });
    var form = el("form", { novalidate: true }, [
      el("p", { text: (card.questions || {}).score || "请为本次服务打分（1–5 分）" }), stars,
      el("p", { text: (card.questions || {}).solved || "问题是否已解决？" }), solvedGroup,
      el("label", { "for": uid + "-comment" }, ["意见（选填）", comment]), err, submit]);
    form.style.display = "flex"; form.style.flexDirection = "column"; form.style.gap = ".55rem";
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!chosen || solved === null) { err.textContent = "请先打分并选择是否已解决"; err.hidden = false; return; }
      if (!sendFrame({ type: "followup_answer", followup_id: card.followup_id, score: chosen, solved: solved,
        comment: comment.value.trim() })) {
        err.textContent = "网络未连接，请稍后再试"; err.hidden = false; return;
      }
      submit.disabled = true; submit.textContent = "提交中…";
      waitFor(err, submit, "提交回访");
    });
    node.appendChild(form);
    return node;
  }

  function markCards(kind, text) {
    Array.prototype.forEach.call(ui.list.querySelectorAll('[data-card="' + kind + '"]:not(.gd-done)'), function (card) {
      var form = card.querySelector("form");
      if (form) form.remove();
      card.appendChild(cardDone(text));
      card.classList.add("gd-done");
    });
  }

  function quickReplies(m) {
    var items = (m.payload && m.payload.quick_replies) || [];
    if (!items.length) return null;
    return el("div", { className: "gd-quick", role: "group", "aria-label": "快捷选项" }, items.map(function (q) {
      return el("button", { type: "button", onclick: function () {
        if (q.action === "handoff") requestHandoff();
        else sendText(q.text || q.label, q.value != null ? { quick_reply: q.label, value: q.value } : { quick_reply: q.label });
      } }, [q.label]);
    }));
  }

  function refreshQuick() {
    var nodes = ui.list.querySelectorAll("li[data-quick]");
    var best = null;
    Array.prototype.forEach.call(nodes, function (n) {
      if (!best || Number(n.dataset.seq) > Number(best.dataset.seq)) best = n;
    });
    Array.prototype.forEach.call(nodes, function (n) {
      var q = n.querySelector(".gd-quick");
      if (q) q.hidden = !(n === best && S.convState === "bot");
    });
  }

  /** One message as a list item; `opts.readOnly` for history transcripts, `opts.pending` for the outbox. */
  function renderMessage(m, opts) {
    opts = opts || {};
    var sender = m.sender;
    var cls = sender === "resident" ? "gd-me" : (sender === "system" ? "gd-sys" : "gd-them");
    var li = el("li", { className: "gd-msg " + cls });
    if (m.seq) li.dataset.seq = String(m.seq);
    if (m.client_msg_id) li.dataset.cid = m.client_msg_id;
    var p = m.payload || {};
    if (sender === "bot" || sender === "agent") {
      li.appendChild(el("span", { className: "gd-name", text: m.sender_name || (sender === "bot" ? "智能客服" : "客服") }));
    }
    if (m.type === "card" && p.card && p.card.kind === "leave_message" && !opts.readOnly) {
      li.appendChild(leaveMessageCard(m));
    } else if (m.type === "card" && p.card && p.card.kind === "guide") {
      // Step-by-step text with its picture (meter guidance).
      var pic = el("img", { src: p.card.image, alt: p.card.alt || "示意图", className: "gd-guide-img", loading: "lazy" });
      li.appendChild(el("div", { className: "gd-bubble gd-guide" }, [el("p", { className: "gd-text" }, [richText(m.text)]), pic]));
    } else if (m.type === "card" && p.card && p.card.kind === "followup" && !opts.readOnly) {
      li.appendChild(followupCard(m));
    } else if (m.type === "card" && p.kind === "rating" && !opts.readOnly) {
      li.classList.add("gd-them"); li.classList.remove("gd-sys");
      li.appendChild(ratingCard(m));
    } else if (m.type === "image" || m.type === "file") {
      li.appendChild(mediaBody(m));
    } else {
      li.appendChild(el("div", { className: "gd-bubble" }, [richText(m.text)]));
    }
    if (!opts.readOnly && p.quick_replies && p.quick_replies.length) {
      var q = quickReplies(m);
      if (q) { li.dataset.quick = "1"; li.appendChild(q); }
    }
    if (sender !== "system") {
      var meta = el("div", { className: "gd-meta" }, [el("time", { datetime: m.created_at || "", text: fmtTime(m.created_at) })]);
      if (opts.pending) {
        meta.appendChild(el("span", { className: "gd-state", text: opts.uploading ? "上传中…" : "发送中" }));
        li.classList.add("gd-pending", "gd-out");
      }
      li.appendChild(meta);
    }
    return li;
  }

  function placeConfirmed(li, seq) {
    var children = ui.list.children;
    for (var i = children.length - 1; i >= 0; i--) {
      var c = children[i];
      if (c.dataset.seq && !c.classList.contains("gd-pending") && Number(c.dataset.seq) < seq) {
        ui.list.insertBefore(li, c.nextSibling);
        return;
      }
    }
    ui.list.insertBefore(li, ui.list.firstChild);
  }

  function pendingNode(cid) {
    return ui.list.querySelector('li.gd-out[data-cid="' + cssEscape(cid) + '"]');
  }
  function cssEscape(s) { return String(s).replace(/["\\]/g, "\\$&"); }

  function renderPending(item, uploading) {
    var existing = pendingNode(item.client_msg_id);
    var li = renderMessage({ sender: "resident", type: item.content_type, text: item.text,
      payload: item.local || item.payload, client_msg_id: item.client_msg_id, created_at: item.created_at },
    { pending: true, uploading: uploading });
    if (existing) existing.replaceWith(li); else ui.list.appendChild(li);
    return li;
  }

  function markFailed(cid, message) {
    var li = pendingNode(cid);
    if (!li) return;
    li.classList.remove("gd-pending");
    li.classList.add("gd-failed");
    var meta = li.querySelector(".gd-meta");
    var stateEl = meta.querySelector(".gd-state");
    if (stateEl) stateEl.remove();
    meta.appendChild(el("span", { className: "gd-state gd-state-failed", text: "发送失败：" + message }));
    meta.appendChild(el("button", { type: "button", className: "gd-retry", "aria-label": "重新发送这条消息",
      onclick: function () { retryFailed(cid); } }, ["重试"]));
  }

  function systemNote(text, isError) {
    var near = isNearBottom();
    var li = el("li", { className: "gd-msg gd-sys gd-local" + (isError ? " gd-err" : ""), role: isError ? "alert" : null },
      [el("div", { className: "gd-bubble", text: text })]);
    ui.list.appendChild(li);
    if (near) scrollToBottom();
  }

  // ------------------------------------------------------------------ applying server messages
  function applyMessage(m, live) {
    S.msgs[m.seq] = m;
    var near = isNearBottom();
    var old = ui.list.querySelector('li[data-seq="' + m.seq + '"]:not(.gd-pending)');
    if (old) old.remove();
    if (m.client_msg_id) {
      var pend = pendingNode(m.client_msg_id);
      if (pend) pend.remove();
      settleOutbox(m.client_msg_id);
    }
    placeConfirmed(renderMessage(m), m.seq);
    var ev = m.payload && m.payload.event;
    if (ev === "message_left") { markCards("leave_message", "留言已提交，我们会尽快与您联系。"); clearPending(); }
    if (ev === "rated") { S.rating = m.payload.score || S.rating || 0; markCards("rating", "感谢您的评价"); clearPending(); }
    if (ev === "followup_answered") { markCards("followup", "感谢您参与回访"); clearPending(); }
    // The conversation state itself comes from welcome/state frames; events only name the agent.
    if (ev === "agent_joined" && m.payload.agent_name) {
      S.agentName = m.payload.agent_name;
      if (S.convState === "assigned") applyConvState("assigned", { accepted: true });
    }
    if (ev === "transfer") S.agentName = m.payload.to_agent || null;
    if (live) {
      if (m.sender === "agent") hideTyping();
      if (m.sender === "agent" || m.sender === "bot") notifyParent(m.sender);
    }
    refreshQuick();
    if (near || m.sender === "resident" || !live) scrollToBottom();
  }

  function onMessage(m) {
    if (!m || m.conversation_id !== S.conversationId || !(m.seq > 0)) return;
    if (m.seq <= S.lastSeq || S.msgs[m.seq]) {
      if (m.client_msg_id) settleOutbox(m.client_msg_id); // a duplicate still proves delivery
      return;
    }
    if (m.seq === S.lastSeq + 1) {
      applyMessage(m, true);
      S.lastSeq = m.seq;
      while (S.buffer[S.lastSeq + 1]) {
        var next = S.buffer[S.lastSeq + 1];
        delete S.buffer[S.lastSeq + 1];
        applyMessage(next, true);
        S.lastSeq = next.seq;
      }
      if (!Object.keys(S.buffer).length) { S.resumeTries = 0; }
      saveChat();
      return;
    }
    S.buffer[m.seq] = m; // gap: hold until the missing messages arrive
    scheduleResume(150);
  }

  function scheduleResume(delay) {
    if (S.resumeTimer) return;
    S.resumeTimer = setTimeout(function () {
      S.resumeTimer = null;
      var waiting = Object.keys(S.buffer).map(Number);
      var need = waiting.length || (S.expectSeq && S.expectSeq > S.lastSeq);
      if (!need || !S.welcomed) return;
      S.resumeTries++;
      if (S.resumeTries > 3 && waiting.length) {
        // The server keeps seq gap-free, so this should never happen; render what we have rather than stall.
        waiting.sort(function (a, b) { return a - b; }).forEach(function (seq) {
          var mm = S.buffer[seq]; delete S.buffer[seq];
          applyMessage(mm, true); S.lastSeq = Math.max(S.lastSeq, seq);
        });
        S.resumeTries = 0;
        saveChat();
        return;
      }
      sendFrame({ type: "resume", after_seq: S.lastSeq });
      scheduleResume(2000 * S.resumeTries); // check again; stops once the gap is filled
    }, delay);
  }

  function resetConversation(newId) {
    S.conversationId = newId;
    S.lastSeq = 0;
    S.msgs = {};
    S.buffer = {};
    S.rating = null;
    S.agentName = null;
    S.expectSeq = 0;
    S.identified = null;
    ui.list.innerHTML = "";
    // Unsent messages of another conversation stay visible as pending; outbox entries keep their conversation.
    S.outbox.forEach(function (i) { renderPending(i); });
    hideTyping();
    showQueue(null);
  }

  function renderCache() {
    ui.list.innerHTML = "";
    Object.keys(S.msgs).map(Number).sort(function (a, b) { return a - b; }).forEach(function (seq) {
      placeConfirmed(renderMessage(S.msgs[seq]), seq);
    });
    S.outbox.forEach(function (i) { renderPending(i); });
    refreshQuick();
    scrollToBottom();
  }

  // ------------------------------------------------------------------ outbox
  function settleOutbox(cid, seq) {
    var before = S.outbox.length;
    S.outbox = S.outbox.filter(function (i) { return i.client_msg_id !== cid; });
    if (S.outbox.length !== before) saveOutbox();
    var li = pendingNode(cid);
    if (li && seq) {
      // Acknowledged (stored) but its `message` frame has not arrived yet: no longer "发送中".
      li.classList.remove("gd-pending");
      li.dataset.ackSeq = String(seq);
      var st = li.querySelector(".gd-state");
      if (st) st.remove();
    }
  }

  function flushOutbox() {
    if (!S.welcomed) return;
    S.outbox.forEach(function (item) {
      if (item.conversation_id == null) item.conversation_id = S.conversationId;
      if (item.conversation_id !== S.conversationId) {
        // Its conversation is not the current one (ended meanwhile): the resident decides.
        if (!item.stale) { item.stale = true; markFailed(item.client_msg_id, "会话已切换，未发送"); }
        return;
      }
      if (item.sentGen === S.gen || item.blockedUntil > Date.now()) return;
      transmit(item);
    });
    saveOutbox();
  }

  function transmit(item) {
    var frame = { type: "message", client_msg_id: item.client_msg_id, text: item.text, content_type: item.content_type };
    if (item.payload) frame.payload = item.payload;
    if (sendFrame(frame)) { item.sentGen = S.gen; item.sentAt = Date.now(); }
  }

  function enqueue(item, uploading) {
    item.created_at = item.created_at || new Date().toISOString();
    item.conversation_id = S.conversationId;
    item.sentGen = 0;
    S.outbox.push(item);
    saveOutbox();
    renderPending(item, uploading);
    scrollToBottom();
    if (S.welcomed) transmit(item);
  }

  function sendText(text, payload) {
    text = (text || "").trim();
    if (!text) return false;
    if (textLength(text) > S.maxChars) { showError("消息过长（最多 " + S.maxChars + " 字），请删减或分条发送"); return false; }
    if (S.convState === "closed") { showError("会话已结束，请点击“开始新的咨询”"); return false; }
    enqueue({ client_msg_id: uuid(), text: text, content_type: "text", payload: payload || null });
    return true;
  }

  function retryFailed(cid) {
    var li = pendingNode(cid);
    var item = null;
    S.outbox.forEach(function (i) { if (i.client_msg_id === cid) item = i; });
    if (!item && li && li._item) { item = li._item; S.outbox.push(item); }
    if (!item) return;
    item.stale = false;
    item.conversation_id = S.conversationId;
    item.sentGen = 0;
    item.blockedUntil = 0;
    saveOutbox();
    renderPending(item);
    if (S.welcomed) transmit(item);
  }

  function onAck(f) {
    settleOutbox(f.client_msg_id, f.seq);
    if (f.seq > S.lastSeq && !S.msgs[f.seq]) { S.expectSeq = Math.max(S.expectSeq || 0, f.seq); scheduleResume(600); }
  }

  function onError(f) {
    var msg = f.message || "操作失败，请稍后重试";
    if (f.client_msg_id) {
      var item = null;
      S.outbox.forEach(function (i) { if (i.client_msg_id === f.client_msg_id) item = i; });
      if (!item) return;
      if (f.code === "rate_limited" || f.code === "internal_error") {
        // Transient: keep it in the outbox and try again shortly (same client_msg_id).
        var wait = Math.max(3, f.retry_after_s || 0) * 1000;
        item.sentGen = 0;
        item.blockedUntil = Date.now() + wait;
        showError(msg);
        setTimeout(flushOutbox, wait + 100);
        return;
      }
      S.outbox = S.outbox.filter(function (i) { return i !== item; });
      saveOutbox();
      var li = pendingNode(f.client_msg_id);
      if (li) li._item = item;
      markFailed(f.client_msg_id, msg);
      return;
    }
    if (!S.welcomed && f.code === "conversation_not_found") {
      // The stored conversation is gone (or belongs to someone else): start over.
      store.remove(KEY_CHAT);
      resetConversation(null);
      sendFrame({ type: "hello", token: S.token });
      return;
    }
    if (S.pendingAction) {
      var a = S.pendingAction;
      S.pendingAction = null;
      clearTimeout(a.timer);
      a.err.textContent = msg;
      a.err.hidden = false;
      if (a.button) { a.button.disabled = false; a.button.textContent = a.label; }
      return;
    }
    showError(msg);
  }

  function waitFor(errEl, button, label) {
    clearPending();
    var action = { err: errEl, button: button, label: label };
    action.timer = setTimeout(function () {
      if (S.pendingAction !== action) return;
      S.pendingAction = null;
      errEl.textContent = "服务器未响应，请稍后重试";
      errEl.hidden = false;
      if (button) { button.disabled = false; button.textContent = label; }
    }, 15000);
    S.pendingAction = action;
  }
  function clearPending() {
    if (S.pendingAction) { clearTimeout(S.pendingAction.timer); S.pendingAction = null; }
  }

  // ------------------------------------------------------------------ typing
  function showTyping() {
    ui.typing.hidden = false;
    if (S.typingTimer) clearTimeout(S.typingTimer);
    S.typingTimer = setTimeout(hideTyping, 5000);
    if (isNearBottom()) scrollToBottom();
  }
  function hideTyping() {
    if (S.typingTimer) { clearTimeout(S.typingTimer); S.typingTimer = null; }
    ui.typing.hidden = true;
  }
  function residentTyping() {
    if (S.convState !== "queued" && S.convState !== "assigned") return;
    var now = Date.now();
    if (now - S.lastTypingSent < TYPING_EVERY_MS) return;
    if (sendFrame({ type: "typing" })) S.lastTypingSent = now;
  }

  // ------------------------------------------------------------------ socket
  function sendFrame(frame) {
    var ws = S.ws;
    if (!ws || ws.readyState !== 1 || (!S.welcomed && frame.type !== "hello")) return false;
    try { ws.send(JSON.stringify(frame)); return true; } catch (e) { return false; }
  }

  function wsUrl() {
    return (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/ws/webchat";
  }

  function fetchVisitor() {
    return fetch("/api/v1/webchat/visitors", { method: "POST", headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("visitor " + r.status);
        return r.json();
      })
      .then(function (data) {
        S.token = data.token;
        store.set(KEY_VISITOR, { token: data.token, visitor_id: data.visitor_id });
      });
  }

  function connect() {
    if (S.reconnectTimer) { clearTimeout(S.reconnectTimer); S.reconnectTimer = null; }
    if (S.ws && (S.ws.readyState === 0 || S.ws.readyState === 1)) return;
    if (!S.token) {
      fetchVisitor().then(connect, function () { scheduleReconnect(); });
      return;
    }
    var gen = ++S.gen;
    var ws;
    try { ws = new WebSocket(wsUrl()); } catch (e) { scheduleReconnect(); return; }
    S.ws = ws;
    S.welcomed = false;
    ws.onopen = function () {
      if (gen !== S.gen) return;
      var hello = { type: "hello", token: S.token };
      if (S.conversationId) { hello.conversation_id = S.conversationId; hello.after_seq = S.lastSeq; }
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = function (ev) {
      if (gen !== S.gen) return;
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      handleFrame(f);
    };
    ws.onclose = function (ev) {
      if (gen !== S.gen) return;
      S.ws = null;
      var wasWelcomed = S.welcomed;
      S.welcomed = false;
      S.outbox.forEach(function (i) { i.sentGen = 0; });
      if (ev.code === 4401) {
        // Token expired or signed with another key: new identity, new conversation.
        S.badToken++;
        S.token = null;
        store.remove(KEY_VISITOR);
        store.remove(KEY_CHAT);
        resetConversation(null);
        if (S.badToken > 3) { showConn("无法建立会话，请刷新页面重试"); return; }
        connect();
        return;
      }
      if (wasWelcomed || S.everWelcomed) showConn("连接已断开，正在重连…");
      setStatus("连接已断开，正在重连…");
      scheduleReconnect();
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect() {
    if (S.reconnectTimer) return;
    var delay = Math.min(8000, 500 * Math.pow(2, S.attempt));
    S.attempt++;
    delay = Math.round(delay * (0.85 + Math.random() * 0.3));
    S.reconnectTimer = setTimeout(function () { S.reconnectTimer = null; connect(); }, delay);
  }

  function reconnectNow() {
    if (S.ws && (S.ws.readyState === 0 || S.ws.readyState === 1)) return;
    S.attempt = 0;
    if (S.reconnectTimer) { clearTimeout(S.reconnectTimer); S.reconnectTimer = null; }
    connect();
  }

  function handleFrame(f) {
    switch (f.type) {
      case "welcome": return onWelcome(f);
      case "message": return onMessage(f.message);
      case "ack": return onAck(f);
      case "state":
        if (f.conversation_id !== S.conversationId) return;
        applyConvState(f.state, { accepted: !!f.accepted });
        if (f.state === "assigned" && f.accepted && !S.agentName) {
          // `state` frames carry no agent name; a fresh hello returns it in `welcome` (replay is deduped).
          sendFrame({ type: "hello", token: S.token, conversation_id: S.conversationId, after_seq: S.lastSeq });
        }
        return;
      case "queue":
        if (f.conversation_id && f.conversation_id !== S.conversationId) return;
        if (S.convState === "queued" || !S.convState) showQueue(f);
        return;
      case "typing":
        if (f.from === "staff" || f.from === "agent") showTyping();
        return;
      case "identified": return onIdentified(f);
      case "history": return onHistory(f);
      case "history_transcript": return onTranscript(f);
      case "error": return onError(f);
      default: return;
    }
  }

  function onWelcome(f) {
    var conv = f.conversation || {};
    S.badToken = 0;
    if (conv.id !== S.conversationId) {
      resetConversation(conv.id);
    } else if (typeof conv.last_seq === "number" && conv.last_seq < S.lastSeq) {
      // The server knows fewer messages than we cached (restored database?): start the view over.
      resetConversation(conv.id);
      S.expectSeq = conv.last_seq;
    }
    S.expectSeq = Math.max(S.expectSeq || 0, conv.last_seq || 0);
    S.rating = conv.rating == null ? S.rating : conv.rating;
    var agentName = conv.agent_name || (conv.agent_id ? S.agentName : null);
    applyConvState(conv.state, { agentName: agentName, accepted: !!conv.accepted });
    S.welcomed = true;
    S.everWelcomed = true;
    S.attempt = 0;
    if (!ui.connBanner.hidden && !ui.connBanner.classList.contains("gd-ok")) showConn("已重新连接", true);
    saveChat();
    flushOutbox();
    // Replayed messages follow the welcome at once; if the conversation is ahead of us afterwards, resume.
    if (S.expectSeq > S.lastSeq) scheduleResume(500);
  }

  // ------------------------------------------------------------------ actions
  function requestHandoff() {
    if (S.convState === "assigned") { systemNote("人工客服正在为您服务，请直接发送您的问题。"); return; }
    if (!sendFrame({ type: "handoff" })) { showError("网络未连接，请稍后再试"); return; }
    ui.btnHandoff.disabled = true;
    setTimeout(function () { ui.btnHandoff.disabled = false; }, 2000);
  }

  function uploadFile(file) {
    var ext = extOf(file.name);
    var rule = LIMITS[ext];
    if (!rule) {
      showError("不支持的文件类型 ." + (ext || "?") + "；支持 " + Object.keys(LIMITS).sort().join(", "));
      return;
    }
    if (!file.size) { showError("文件是空的"); return; }
    if (file.size > rule[1]) {
      showError("文件过大（" + (rule[0] === "image" ? "图片" : "文件") + "最大 " + (rule[1] / MB) + " MB）");
      return;
    }
    if (!S.conversationId || !S.token) { showError("正在连接，请稍后再试"); return; }
    if (S.convState === "closed") { showError("会话已结束，请点击“开始新的咨询”"); return; }
    var cid = uuid();
    var preview = rule[0] === "image" && window.URL && URL.createObjectURL ? URL.createObjectURL(file) : null;
    var temp = { client_msg_id: cid, content_type: rule[0], text: file.name, created_at: new Date().toISOString(),
      local: { name: file.name, size: file.size, url: preview } };
    var li = renderPending(temp, true);
    scrollToBottom();
    var form = new FormData();
    form.append("file", file, file.name);
    // The conversation goes in the URL: the server checks it (and the token) before accepting the body.
    fetch("/api/v1/webchat/uploads?conversation_id=" + encodeURIComponent(String(S.conversationId)),
      { method: "POST", body: form, headers: { "X-Visitor-Token": S.token },
      credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) { return { ok: r.ok, data: data }; });
      })
      .then(function (res) {
        if (!res.ok) {
          li.remove();
          showError((res.data && res.data.error && res.data.error.message) || "上传失败，请稍后重试");
          return;
        }
        li.remove();
        if (preview) setTimeout(function () { URL.revokeObjectURL(preview); }, 30000);
        enqueue({ client_msg_id: cid, content_type: rule[0], text: res.data.name || file.name,
          payload: { file_token: res.data.file_token }, local: res.data, created_at: temp.created_at });
      }, function () {
        li.remove();
        showError("上传失败，请检查网络后重试");
      });
  }

  // ------------------------------------------------------------------ history
  function openHistory() {
    ui.history.hidden = false;
    ui.historyBack.hidden = true;
    if (S.identified && S.identified.conversationId === S.conversationId) requestHistory();
    else renderIdentify();
  }
  function closeHistory() {
    ui.history.hidden = true;
    clearPending();
    ui.btnHistory.focus();
  }

  function historyBody(nodes) {
    ui.historyBody.innerHTML = "";
    nodes.forEach(function (n) { ui.historyBody.appendChild(n); });
  }

  function renderIdentify() {
    var acct = el("input", { id: "hist-account", inputmode: "numeric", maxlength: "20", autocomplete: "off", required: true });
    var last4 = el("input", { id: "hist-last4", inputmode: "numeric", maxlength: "4", pattern: "[0-9]{4}", autocomplete: "off", required: true });
    var err = el("p", { className: "gd-card-error", role: "alert", hidden: true });
    var submit = el("button", { type: "submit", className: "gd-primary" }, ["验证并查看"]);
    var form = el("form", { className: "gd-card", novalidate: true }, [
      el("h3", { text: "验证身份后查看历史记录" }),
      el("p", { className: "gd-file-size", text: "请输入户号和预留手机号后四位，验证通过后可查看您名下的历史咨询。" }),
      el("label", { "for": "hist-account" }, ["户号", acct]),
      el("label", { "for": "hist-last4" }, ["预留手机号后四位", last4]),
      err, submit,
      el("button", { type: "button", className: "gd-secondary", onclick: function () { requestHistory(); } }, ["不验证，仅查看本设备的记录"])
    ]);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      err.hidden = true;
      var a = acct.value.replace(/\s+/g, "");
      var l = last4.value.trim();
      if (!a || !/^\d{4}$/.test(l)) { err.textContent = "请输入户号和预留手机号后四位"; err.hidden = false; return; }
      if (!sendFrame({ type: "identify", account_no: a, phone_last4: l })) {
        err.textContent = "网络未连接，请稍后再试"; err.hidden = false; return;
      }
      submit.disabled = true; submit.textContent = "验证中…";
      waitFor(err, submit, "验证并查看");
    });
    historyBody([form]);
    acct.focus();
  }

  function onIdentified(f) {
    clearPending();
    S.identified = { conversationId: S.conversationId, name: f.name };
    systemNote("身份验证成功：" + (f.name || ""));
    if (!ui.history.hidden) requestHistory();
  }

  function requestHistory() {
    ui.historyBack.hidden = true;
    var err = el("p", { className: "gd-card-error", role: "alert", hidden: true });
    var loading = el("p", { className: "gd-empty", text: "正在加载…" });
    historyBody([loading, err]);
    if (!sendFrame({ type: "history" })) { loading.remove(); err.textContent = "网络未连接，请稍后再试"; err.hidden = false; return; }
    waitFor(err, null, "");
  }

  function onHistory(f) {
    clearPending();
    if (ui.history.hidden) return;
    var items = f.conversations || [];
    var nodes = [];
    if (S.identified && S.identified.name) nodes.push(el("p", { className: "gd-file-size", text: "已验证：" + S.identified.name }));
    if (!items.length) nodes.push(el("p", { className: "gd-empty", text: "暂无历史会话" }));
    else {
      nodes.push(el("ul", { className: "gd-hist" }, items.map(function (c) {
        var label = "查看 " + fmtDateTime(c.created_at) + " 的会话记录";
        return el("li", null, [el("button", { type: "button", "aria-label": label, onclick: function () { requestTranscript(c.id); } }, [
          el("span", { className: "gd-hist-top" }, [
            el("span", { text: fmtDateTime(c.created_at) }),
            el("span", { text: (c.channel_label || "") + " · " + (c.state_label || "") + (c.rating ? " · " + c.rating + "分" : "") })
          ]),
          el("span", { className: "gd-hist-preview", text: c.preview || "（无文字消息）" })
        ])]);
      })));
    }
    historyBody(nodes);
  }

  function requestTranscript(id) {
    var err = el("p", { className: "gd-card-error", role: "alert", hidden: true });
    historyBody([el("p", { className: "gd-empty", text: "正在加载…" }), err]);
    ui.historyBack.hidden = false;
    if (!sendFrame({ type: "history", conversation_id: id })) { err.textContent = "网络未连接，请稍后再试"; err.hidden = false; return; }
    waitFor(err, null, "");
  }

  function onTranscript(f) {
    clearPending();
    if (ui.history.hidden) return;
    var list = el("ol", { className: "gd-list", "aria-label": "会话记录" });
    (f.messages || []).forEach(function (m) { list.appendChild(renderMessage(m, { readOnly: true })); });
    var first = (f.messages || [])[0];
    historyBody([el("p", { className: "gd-file-size", text: first ? "会话时间：" + fmtDateTime(first.created_at) : "" }), list]);
    ui.historyBack.hidden = false;
    ui.historyBack.focus();
  }

  // ------------------------------------------------------------------ embedding
  function notifyParent(sender) {
    if (window.parent === window) return;
    try { window.parent.postMessage({ source: "gasdesk-chat", type: "message", sender: sender }, "*"); } catch (e) { /* ignore */ }
  }

  function applyEmbedOptions() {
    var params = new URLSearchParams(location.search);
    if (params.get("embed") === "1") document.body.classList.add("gd-embed");
    var color = params.get("color");
    if (color && /^#[0-9a-fA-F]{3,8}$/.test(color)) {
      document.documentElement.style.setProperty("--brand", color);
      var meta = document.querySelector('meta[name="theme-color"]');
      if (meta) meta.setAttribute("content", color);
    }
  }

  // ------------------------------------------------------------------ wiring
  function autoGrow() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 120) + "px";
    if (ui.updateCount) ui.updateCount();
  }

  function init() {
    ["status", "messages", "list", "typing", "composer", "input", "restart"].forEach(function (id) { ui[id] = $(id); });
    ui.connBanner = $("conn-banner"); ui.queueBanner = $("queue-banner");
    ui.errorBar = $("error-bar"); ui.errorText = $("error-text");
    ui.sendForm = $("send-form"); ui.fileInput = $("file-input");
    ui.btnHandoff = $("btn-handoff"); ui.btnHistory = $("btn-history"); ui.btnClose = $("btn-close");
    ui.btnNew = $("btn-new"); ui.btnUpload = $("btn-upload"); ui.btnSend = $("btn-send");
    // The server's limit, shown as a counter near it; the text is never cut (no maxlength).
    S.maxChars = parseInt(ui.input.getAttribute("data-max-chars"), 10) || S.maxChars;
    if (window.gasdeskChatText) {
      ui.updateCount = window.gasdeskChatText.attachCounter(ui.input, $("input-count"), function (over) {
        ui.btnSend.disabled = over;
      });
    }
    ui.history = $("history"); ui.historyBody = $("history-body"); ui.historyBack = $("history-back");
    ui.lightbox = $("lightbox"); ui.lightboxImg = $("lightbox-img"); ui.lightboxClose = $("lightbox-close");

    applyEmbedOptions();
    loadState();
    renderCache();
    if (S.convState) applyConvState(S.convState, { agentName: S.agentName });
    setStatus("正在连接…");

    ui.sendForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (sendText(ui.input.value)) { ui.input.value = ""; autoGrow(); }
      ui.input.focus();
    });
    ui.input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        if (sendText(ui.input.value)) { ui.input.value = ""; autoGrow(); }
      }
    });
    ui.input.addEventListener("input", function () { autoGrow(); residentTyping(); });
    ui.btnHandoff.addEventListener("click", requestHandoff);
    ui.btnUpload.addEventListener("click", function () { ui.fileInput.click(); });
    ui.fileInput.addEventListener("change", function () {
      var files = Array.prototype.slice.call(ui.fileInput.files || []);
      ui.fileInput.value = "";
      files.forEach(uploadFile);
    });
    ui.btnNew.addEventListener("click", function () {
      if (!sendFrame({ type: "new_conversation" })) { showError("网络未连接，请稍后再试"); return; }
      ui.btnNew.disabled = true;
      setTimeout(function () { ui.btnNew.disabled = false; }, 2000);
    });
    ui.btnClose.addEventListener("click", function () {
      if (!window.confirm("确定结束本次咨询吗？")) return;
      if (!sendFrame({ type: "close" })) showError("网络未连接，请稍后再试");
    });
    $("error-dismiss").addEventListener("click", function () { ui.errorBar.hidden = true; });
    ui.btnHistory.addEventListener("click", openHistory);
    $("history-close").addEventListener("click", closeHistory);
    ui.historyBack.addEventListener("click", requestHistory);
    ui.lightboxClose.addEventListener("click", function () { ui.lightbox.hidden = true; ui.lightboxImg.src = ""; });
    ui.lightbox.addEventListener("click", function (ev) { if (ev.target === ui.lightbox) { ui.lightbox.hidden = true; ui.lightboxImg.src = ""; } });
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "Escape") return;
      if (!ui.lightbox.hidden) { ui.lightbox.hidden = true; ui.lightboxImg.src = ""; } else if (!ui.history.hidden) closeHistory();
    });

    window.addEventListener("online", reconnectNow);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) reconnectNow(); });
    window.addEventListener("pagehide", function () { saveChat(true); saveOutbox(); });
    if (window.visualViewport) {
      // iOS/WeChat: keep the composer above the on-screen keyboard.
      var app = $("app");
      window.visualViewport.addEventListener("resize", function () {
        var near = isNearBottom();
        app.style.height = window.visualViewport.height + "px";
        if (near) scrollToBottom();
      });
    }
    // A socket can look open while dead (mobile networks, backgrounded webviews): an overdue ack forces a reconnect.
    setInterval(function () {
      if (!S.ws || S.ws.readyState !== 1) return;
      var now = Date.now();
      var overdue = S.outbox.some(function (i) { return i.sentGen === S.gen && now - i.sentAt > ACK_TIMEOUT_MS; });
      if (overdue) { try { S.ws.close(4000, "ack timeout"); } catch (e) { /* ignore */ } }
    }, 3000);

    connect();

    // Small hook for diagnostics and tests (no secrets beyond what localStorage already holds).
    window.gasdeskChat = {
      state: S,
      socket: function () { return S.ws; },
      reconnect: reconnectNow
    };
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
