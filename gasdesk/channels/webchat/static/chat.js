/* gasdesk resident chat (web/H5, iframe behind widget.js, WeChat webview).
 * Protocol: docs/chat-protocol.md. Plain ES2017, no build step, no external resources.
 *
 * Reliability model (the socket, the outbox and the seq line are the shared client's,
 * web/static/socket-client.js; this file is the widget's UI and what it keeps across reloads):
 *  - every outgoing message has a client_msg_id and sits in the outbox (persisted in localStorage here)
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
  // The numbers shared with the server (gasdesk/realtime/protocol.py), carried by the page.
  var P = window.gasdeskSocket.protocol();
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
    // lastSeq: the seq line's (track, below); welcomed: the socket's (link)
    convState: null,
    agentName: null,
    rating: null,
    msgs: {},            // seq -> message (applied, contiguous up to lastSeq)
    lastTypingSent: 0,
    typingTimer: null,
    pendingAction: null, // a form waiting for the server (errors without client_msg_id go there)
    identified: null,    // {conversationId, name}
    badToken: 0
  };

  var ui = {};
  var link = null;         // the socket (gasdeskSocket.connect), made in init()
  var restoredOutbox = []; // unacknowledged messages of the last visit, handed to the link's outbox

  // The seq line of the current conversation; S.lastSeq reads and writes it.
  var track = window.gasdeskSocket.SeqTracker({
    apply: function (m) { applyMessage(m, true); saveChat(); },
    duplicate: function (m) { if (m.client_msg_id) settleOutbox(m.client_msg_id); }, // a duplicate still proves delivery
    resume: function (afterSeq) { sendFrame({ type: "resume", after_seq: afterSeq }); },
    canResume: function () { return !!link && link.isReady(); }
  });
  Object.defineProperty(S, "lastSeq", { get: function () { return track.lastSeq; },
    set: function (seq) { track.lastSeq = seq; } });
  Object.defineProperty(S, "welcomed", { get: function () { return !!link && link.isReady(); } });

  /** Opened from the WeChat official account: the OAuth return put the follower's visitor token in the
   * fragment. It replaces any anonymous identity (and its chat), then leaves the address bar. */
  function adoptFragmentToken() {
    var m = /(?:^#|&)vt=([^&]+)/.exec(location.hash || "");
    if (!m) return;
    var token = decodeURIComponent(m[1]);
    var old = store.get(KEY_VISITOR);
    if (!old || old.token !== token) {
      store.set(KEY_VISITOR, { token: token, visitor_id: null });
      store.remove(KEY_CHAT);
    }
    if (window.history.replaceState) window.history.replaceState(null, "", location.pathname + location.search);
  }

  function loadState() {
    adoptFragmentToken();
    var v = store.get(KEY_VISITOR);
    S.token = v && typeof v === "object" ? v.token : (typeof v === "string" ? v : null);
    var chat = store.get(KEY_CHAT);
    if (chat && typeof chat === "object" && chat.conversation_id) {
      S.conversationId = chat.conversation_id;
      track.reset(chat.last_seq || 0);
      S.convState = chat.state || null;
      S.agentName = chat.agent_name || null;
      S.rating = chat.rating == null ? null : chat.rating;
      (chat.messages || []).forEach(function (m) {
        if (m && m.seq <= S.lastSeq && m.conversation_id === S.conversationId) S.msgs[m.seq] = m;
      });
    }
    var box = store.get(KEY_OUTBOX);
    restoredOutbox = Array.isArray(box) ? box : [];
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

  function saveOutbox(items) {
    store.set(KEY_OUTBOX, (items || link.outbox.items()).map(function (i) {
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
    if (!frame) { ui.queueBanner.hidden = true; ui.peakOffer.hidden = true; return; }
    var ahead = Math.max(0, (frame.position || 1) - 1);
    var minutes = Math.max(1, Math.round((frame.estimated_wait_s || 0) / 60));
    ui.queueBanner.textContent = frame.callback
      ? "已预约回拨（" + frame.callback.phone + "）：排队位置已为您保留，您前面还有 " + ahead + " 位"
      : "排队中：您前面还有 " + ahead + " 位，预计等待约 " + minutes + " 分钟";
    ui.queueBanner.hidden = false;
    // Peak hours: the server says when the expected wait passes its threshold (gasdesk/callbacks).
    if (frame.peak) {
      ui.peakText.textContent = "当前咨询人数较多，预计等待约 " + minutes + " 分钟。留下手机号预约回拨，" +
        "我们保留您的排队位置，轮到您时客服回电；您也可以自助办理。";
    }
    ui.peakOffer.hidden = !frame.peak;
  }

  function onCallbackBooked(f) {
    ui.peakOffer.hidden = true;
    ui.peakErr.hidden = true;
    var ahead = Math.max(0, (f.position || 1) - 1);
    ui.queueBanner.textContent = "已预约回拨：排队位置已为您保留，您前面还有 " + ahead + " 位";
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
    var content = el("textarea", { id: uid + "-content", name: "content", maxlength: String(P.max_message_chars), required: true,
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

  /** 有帮助/没帮助 under a knowledge answer: posted to the KB feedback API; both buttons give way to a thank-you. */
  function sendKbFeedback(q, button) {
    var group = button.parentNode;
    fetch("/api/v1/kb/articles/" + encodeURIComponent(q.article_id) + "/feedback",
      { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ helpful: q.helpful === "1" }), credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) return;
        Array.prototype.forEach.call(group.querySelectorAll("[data-kb-feedback]"), function (b) { b.remove(); });
        group.insertBefore(cardDone(q.helpful === "1" ? "感谢您的反馈" : "感谢反馈，我们会改进这条解答"), group.firstChild);
      })
      .catch(function () { showError("网络未连接，请稍后再试"); });
  }

  function quickReplies(m) {
    var items = (m.payload && m.payload.quick_replies) || [];
    if (!items.length) return null;
    return el("div", { className: "gd-quick", role: "group", "aria-label": "快捷选项" }, items.map(function (q) {
      var attrs = { type: "button", onclick: function (ev) {
        if (q.action === "handoff") requestHandoff();
        else if (q.action === "kb_feedback") sendKbFeedback(q, ev.currentTarget);
        else sendText(q.text || q.label, q.value != null ? { quick_reply: q.label, value: q.value } : { quick_reply: q.label });
      } };
      if (q.action === "kb_feedback") attrs["data-kb-feedback"] = q.helpful;
      return el("button", attrs, [q.label]);
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
  // Outage notices posted into the chat (停气/停暖, and their end) also stay pinned above the messages.
  var OUTAGE_PURPOSES = { outage_notice: 1, heating_notice: 1, outage_restored: 1 };
  function showOutage(m) {
    var banner = document.getElementById("outage-banner");
    if (!banner || !m.payload || !OUTAGE_PURPOSES[m.payload.purpose]) return;
    banner.textContent = m.text || "";
    banner.hidden = !m.text;
  }

  function renderMessage(m, opts) {
    opts = opts || {};
    showOutage(m);
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
    if (S.msgs[m.seq]) { track.duplicate(m); return; }
    track.accept(m); // applied in seq order (applyMessage), a duplicate dropped, a gap resumed
  }

  function resetConversation(newId) {
    S.conversationId = newId;
    track.reset(0);
    S.msgs = {};
    S.rating = null;
    S.agentName = null;
    S.identified = null;
    ui.list.innerHTML = "";
    // Unsent messages of another conversation stay visible as pending; outbox entries keep their conversation.
    link.outbox.items().forEach(function (i) { renderPending(i); });
    hideTyping();
    showQueue(null);
  }

  function renderCache() {
    ui.list.innerHTML = "";
    Object.keys(S.msgs).map(Number).sort(function (a, b) { return a - b; }).forEach(function (seq) {
      placeConfirmed(renderMessage(S.msgs[seq]), seq);
    });
    link.outbox.items().forEach(function (i) { renderPending(i); });
    refreshQuick();
    scrollToBottom();
  }

  // ------------------------------------------------------------------ outbox (kept by the socket client)
  /** The message is delivered (acknowledged, or its message arrived): out of the outbox, no longer 发送中. */
  function settleOutbox(cid, seq) {
    link.outbox.settle(cid);
    var li = pendingNode(cid);
    if (li && seq) {
      // Acknowledged (stored) but its `message` frame has not arrived yet: no longer "发送中".
      li.classList.remove("gd-pending");
      li.dataset.ackSeq = String(seq);
      var st = li.querySelector(".gd-state");
      if (st) st.remove();
    }
  }

  /** Outbox rule of the widget: an item waits for its own conversation; one of an ended conversation stays
   *  shown as failed until the resident retries it. */
  function holdItem(item) {
    if (item.conversation_id == null) item.conversation_id = S.conversationId;
    if (item.conversation_id === S.conversationId) return false;
    if (!item.stale) { item.stale = true; markFailed(item.client_msg_id, "会话已切换，未发送"); }
    return true;
  }

  function messageFrame(item) {
    var frame = { type: "message", text: item.text, content_type: item.content_type };
    if (item.payload) frame.payload = item.payload;
    return frame;
  }

  function enqueue(item, uploading) {
    item.created_at = item.created_at || new Date().toISOString();
    item.conversation_id = S.conversationId;
    renderPending(item, uploading);
    scrollToBottom();
    link.outbox.add(item);
  }

  function sendText(text, payload) {
    text = (text || "").trim();
    if (!text) return false;
    if (textLength(text) > P.max_message_chars) {
      showError("消息过长（最多 " + P.max_message_chars + " 字），请删减或分条发送");
      return false;
    }
    if (S.convState === "closed") { showError("会话已结束，请点击“开始新的咨询”"); return false; }
    enqueue({ client_msg_id: window.gasdeskSocket.newClientMsgId(), text: text, content_type: "text",
      payload: payload || null });
    return true;
  }

  function retryFailed(cid) {
    var li = pendingNode(cid);
    var item = null;
    link.outbox.items().forEach(function (i) { if (i.client_msg_id === cid) item = i; });
    if (!item && li && li._item) item = li._item;
    if (!item) return;
    item.stale = false;
    item.conversation_id = S.conversationId;
    renderPending(item);
    link.outbox.retry(item);
  }

  function onAck(f) {
    settleOutbox(f.client_msg_id, f.seq);
    if (!S.msgs[f.seq]) track.expect(f.seq);
  }

  function onSendRefused(item, f) {
    var li = pendingNode(item.client_msg_id);
    if (li) li._item = item;
    markFailed(item.client_msg_id, f.message || "操作失败，请稍后重试");
  }

  function onError(f) {
    var msg = f.message || "操作失败，请稍后重试";
    if (f.client_msg_id) return; // about a message no longer in the outbox (the outbox took its own)
    if (f.request_type && f.request_type.indexOf("video_") === 0) {
      // video assist (gasdesk/video/static/resident.js) undoes its own step; the resident sees why
      window.dispatchEvent(new CustomEvent("gasdesk:video", { detail: { kind: "error", code: f.code, request_type: f.request_type } }));
    }
    if (!S.welcomed && f.code === "conversation_not_found") {
      // The stored conversation is gone (or belongs to someone else): start over.
      store.remove(KEY_CHAT);
      resetConversation(null);
      link.greet();
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
    }, P.ack_timeout_ms);
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
    if (now - S.lastTypingSent < P.typing_interval_ms) return;
    if (sendFrame({ type: "typing" })) S.lastTypingSent = now;
  }

  // ------------------------------------------------------------------ socket
  function sendFrame(frame) {
    return link.send(frame); // false until the server has welcomed this socket
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

  function hello() {
    var frame = { type: "hello", token: S.token };
    if (S.conversationId) { frame.conversation_id = S.conversationId; frame.after_seq = S.lastSeq; }
    return frame;
  }

  function onSocketClose(ev, info) {
    if (ev.code === P.close_codes.unauthorized) {
      // Token expired or signed with another key: new identity, new conversation.
      S.badToken++;
      S.token = null;
      store.remove(KEY_VISITOR);
      store.remove(KEY_CHAT);
      resetConversation(null);
      if (S.badToken > 3) { showConn("无法建立会话，请刷新页面重试"); return "stop"; }
      return "now";
    }
    if (info.wasReady || link.everReady()) showConn("连接已断开，正在重连…");
    setStatus("连接已断开，正在重连…");
    return undefined;
  }

  function connect() {
    link = window.gasdeskSocket.connect({
      path: "/ws/webchat",
      prepare: function () { return S.token ? null : fetchVisitor(); },
      greeting: hello,
      onFrame: handleFrame,
      onClose: onSocketClose,
      outbox: {
        items: restoredOutbox,
        frame: messageFrame,
        hold: holdItem,
        changed: saveOutbox,
        acked: function (item, ack) { onAck(ack); },
        failed: onSendRefused,
        delayed: function (item, f) { showError(f.message || "发送过于频繁，稍后自动重发"); }
      }
    });
  }

  function handleFrame(f) {
    switch (f.type) {
      case "welcome": return onWelcome(f);
      case "message": return onMessage(f.message);
      case "ack": return onAck(f); // one the outbox no longer holds (a resend's duplicate ack)
      case "state":
        if (f.conversation_id !== S.conversationId) return;
        applyConvState(f.state, { accepted: !!f.accepted });
        if (f.state === "assigned" && f.accepted && !S.agentName) {
          // `state` frames carry no agent name; a fresh hello returns it in `welcome` (replay is deduped).
          link.greet();
        }
        return;
      case "queue":
        if (f.conversation_id && f.conversation_id !== S.conversationId) return;
        if (S.convState === "queued" || !S.convState) showQueue(f);
        return;
      case "typing":
        if (f.from === "staff" || f.from === "agent") showTyping();
        return;
      case "callback_booked": return onCallbackBooked(f);
      case "identified": return onIdentified(f);
      case "history": return onHistory(f);
      case "history_transcript": return onTranscript(f);
      case "video": // video assist (gasdesk/video/static/resident.js)
        window.dispatchEvent(new CustomEvent("gasdesk:video", { detail: f }));
        return;
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
    }
    S.rating = conv.rating == null ? S.rating : conv.rating;
    var agentName = conv.agent_name || (conv.agent_id ? S.agentName : null);
    applyConvState(conv.state, { agentName: agentName, accepted: !!conv.accepted });
    if (!ui.connBanner.hidden && !ui.connBanner.classList.contains("gd-ok")) showConn("已重新连接", true);
    saveChat();
    link.ready(); // sends may flow: the outbox resends what is unacknowledged
    // Replayed messages follow the welcome at once; if the conversation is still ahead of us then, resume.
    track.expect(conv.last_seq || 0);
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
    var cid = window.gasdeskSocket.newClientMsgId();
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
    ui.peakOffer = $("peak-offer"); ui.peakText = $("peak-text"); ui.peakErr = $("peak-err");
    ui.errorBar = $("error-bar"); ui.errorText = $("error-text");
    ui.sendForm = $("send-form"); ui.fileInput = $("file-input");
    ui.btnHandoff = $("btn-handoff"); ui.btnHistory = $("btn-history"); ui.btnClose = $("btn-close");
    ui.btnNew = $("btn-new"); ui.btnUpload = $("btn-upload"); ui.btnSend = $("btn-send");
    // The server's limit, shown as a counter near it; the text is never cut (no maxlength).
    if (window.gasdeskChatText) {
      ui.updateCount = window.gasdeskChatText.attachCounter(ui.input, $("input-count"), function (over) {
        ui.btnSend.disabled = over;
      });
    }
    ui.history = $("history"); ui.historyBody = $("history-body"); ui.historyBack = $("history-back");
    ui.lightbox = $("lightbox"); ui.lightboxImg = $("lightbox-img"); ui.lightboxClose = $("lightbox-close");

    applyEmbedOptions();
    loadState();
    connect(); // the socket opens once this returns; the outbox it holds is rendered next
    renderCache();
    if (S.convState) applyConvState(S.convState, { agentName: S.agentName });
    setStatus("正在连接…");

    $("peak-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var phone = $("peak-phone").value.replace(/\s+/g, "");
      if (!/^1[3-9]\d{9}$/.test(phone)) {
        ui.peakErr.textContent = "请输入 11 位手机号";
        ui.peakErr.hidden = false;
        return;
      }
      ui.peakErr.hidden = true;
      if (!sendFrame({ type: "callback_request", phone: phone })) showError("连接中断，请稍后再试");
    });
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
    // Small hook for diagnostics and tests (no secrets beyond what localStorage already holds).
    window.gasdeskChat = {
      state: S,
      socket: function () { return link.socket(); },
      send: sendFrame, // video assist's signalling rides on this socket (false while it is not ready)
      reconnect: function () { link.reconnectNow(); }
    };
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
