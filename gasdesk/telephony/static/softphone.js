/* gasdesk agent softphone (/agent, embedded hotline only: GASDESK_HOTLINE_IN_APP with GASDESK_SIP_ENABLED).
 * Plain JS, no build step. The console (conversations/static/agent.js) passes the call frames of its socket
 * as "gasdesk:call" window events: call_ringing (a screen pop on every console), call_offered (the call rings
 * for this agent: 接听 / 拒接), call_offer_withdrawn, call_ended. Signalling is HTTP (telephony/api.py): the
 * SDP offer is POSTed once every ICE candidate is gathered (no trickle) and the server's answer comes back.
 * In production agents' phones register with FreeSWITCH instead and this file is not loaded. */
(function () {
  "use strict";

  const root = document.getElementById("softphone");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const ME = Number(document.getElementById("console").dataset.userId);
  const ICE_GATHER_MS = 3000;
  const MAX_POPS = 3;

  const S = {
    offer: null, // the call_offered frame ringing here
    call: null, // {id, conversation_id, customer_id, caller_masked, pc, stream, startedAt, muted, held}
    pops: new Map(), // call id -> screen pop element
    timer: null,
  };
  window.gasdeskSoftphone = { state: S, answer, reject, hangup, toggleMute, toggleHold, transfer };

  const agent = () => window.gasdeskAgent;
  const h = (...args) => agent().h(...args);
  const api = (...args) => agent().api(...args);
  const toast = (...args) => agent().toast(...args);

  function fmtDuration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  }

  // ------------------------------------------------------------------ screen pop (every console)

  async function screenPop(f) {
    if (S.pops.has(f.call_id)) return;
    const card = h("div", { class: "call-pop", "data-call-id": String(f.call_id) },
      h("div", { class: "call-pop-head" }, h("strong", { text: "热线来电" }),
        h("span", { class: "muted", text: f.customer_id ? "已识别客户" : "未识别号码" }),
        h("button", { type: "button", class: "link-btn call-pop-close", text: "×", title: "关闭",
          onclick: () => dropPop(f.call_id) })),
      h("div", { class: "call-pop-body" }, h("p", { class: "muted", text: f.customer_id ? "加载客户信息…" : "来电号码不在档案中，接听后可查找并关联客户" })));
    S.pops.set(f.call_id, card);
    $("call-pops").prepend(card);
    while (S.pops.size > MAX_POPS) dropPop(S.pops.keys().next().value);
    if (!f.customer_id) return;
    let c, hist;
    try {
      [c, hist] = await Promise.all([api("GET", "/api/v1/customers/" + f.customer_id),
        api("GET", "/api/v1/customers/" + f.customer_id + "/conversations").catch(() => [])]);
    } catch (e) {
      card.querySelector(".call-pop-body").replaceChildren(h("p", { class: "error", text: e.message }));
      return;
    }
    const fmt = agent().fmtTime;
    card.querySelector(".call-pop-body").replaceChildren(
      h("div", { class: "call-pop-name" }, h("span", { class: "cust-name", text: c.name }),
        h("a", { href: "/customers/" + c.id, target: "_blank", rel: "noopener", text: "客户档案" })),
      h("div", { class: "call-pop-accounts" }, "户号：",
        ...((c.accounts || []).length ? c.accounts.slice(0, 3).map((a) => h("span", { class: "account-no", text: a.account_no })) : ["未开户"])),
      h("div", { class: "call-pop-section", text: "最近联系" }),
      (hist || []).filter((x) => x.id !== f.conversation_id).length ? h("ul", { class: "call-pop-list" },
        hist.filter((x) => x.id !== f.conversation_id).slice(0, 3).map((x) => h("li", {
          text: fmt(x.created_at) + " · " + x.channel_label + " · " + x.state_label + (x.preview ? " · " + x.preview : "") }))) :
        h("p", { class: "muted", text: "暂无" }),
      h("div", { class: "call-pop-section", text: "最近工单" }),
      (c.tickets || []).length ? h("ul", { class: "call-pop-list call-pop-tickets" }, c.tickets.slice(0, 3).map((t) => h("li", {},
        h("a", { href: t.link, target: "_blank", rel: "noopener", text: t.number }),
        " " + t.type_label + " · " + t.status_label))) : h("p", { class: "muted", text: "暂无" }));
  }

  function dropPop(callId) {
    const card = S.pops.get(callId);
    if (card) card.remove();
    S.pops.delete(callId);
  }

  // ------------------------------------------------------------------ the call bar

  function render() {
    const bar = $("call-bar");
    clearInterval(S.timer);
    S.timer = null;
    if (S.call) {
      const c = S.call;
      const clock = h("span", { class: "call-timer", id: "call-timer", text: fmtDuration(Date.now() - c.startedAt) });
      S.timer = setInterval(() => { clock.textContent = fmtDuration(Date.now() - c.startedAt); }, 1000);
      bar.className = "call-bar in-call" + (c.held ? " held" : "");
      bar.replaceChildren(
        h("span", { class: "call-icon", text: "☎" }),
        h("strong", { text: c.held ? "通话保持中" : "通话中" }),
        h("span", { class: "call-who", text: c.caller_masked + (c.name ? "（" + c.name + "）" : "") }),
        clock,
        h("button", { type: "button", id: "call-mute", class: "secondary", text: c.muted ? "取消静音" : "静音", onclick: toggleMute }),
        h("button", { type: "button", id: "call-hold", class: "secondary", text: c.held ? "恢复" : "保持", onclick: toggleHold }),
        h("button", { type: "button", id: "call-transfer", class: "secondary", text: "转接", onclick: transfer }),
        h("button", { type: "button", id: "call-hangup", class: "danger", text: "挂断", onclick: hangup }));
      bar.hidden = false;
    } else if (S.offer) {
      const o = S.offer;
      bar.className = "call-bar ringing";
      bar.replaceChildren(
        h("span", { class: "call-icon", text: "☎" }),
        h("strong", { text: "来电" }),
        h("span", { class: "call-who", text: o.caller_masked + (o.name ? "（" + o.name + "）" : "") }),
        h("button", { type: "button", id: "call-answer", class: "answer", text: "接听", onclick: answer }),
        h("button", { type: "button", id: "call-reject", class: "danger", text: "拒接", onclick: reject }));
      bar.hidden = false;
    } else {
      bar.hidden = true;
      bar.replaceChildren();
    }
  }

  function waitIceGathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); clearTimeout(t); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const t = setTimeout(done, ICE_GATHER_MS); // whatever was gathered by then
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  async function answer() {
    const o = S.offer;
    if (!o || S.call) return;
    const btn = $("call-answer");
    if (btn) btn.disabled = true;
    let stream = null, pc = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      pc = new RTCPeerConnection({ iceServers: [] });
      stream.getAudioTracks().forEach((t) => pc.addTrack(t, stream));
      pc.addEventListener("track", (e) => {
        const audio = $("softphone-audio");
        audio.srcObject = e.streams[0] || new MediaStream([e.track]);
        audio.play().catch(() => {});
      });
      await pc.setLocalDescription(await pc.createOffer());
      await waitIceGathered(pc);
      const res = await api("POST", "/api/v1/calls/" + o.call_id + "/softphone/answer", { sdp: pc.localDescription.sdp });
      await pc.setRemoteDescription({ type: "answer", sdp: res.sdp });
    } catch (e) {
      if (pc) pc.close();
      if (stream) stream.getTracks().forEach((t) => t.stop());
      toast(e && e.name === "NotAllowedError" ? "无法使用麦克风，请在浏览器中允许麦克风权限" : (e.message || "接听失败"), "error");
      if (btn) btn.disabled = false;
      return;
    }
    const call = { id: o.call_id, conversation_id: o.conversation_id, customer_id: o.customer_id,
      caller_masked: o.caller_masked, name: o.name, pc, stream, startedAt: Date.now(), muted: false, held: false };
    S.call = call;
    S.offer = null;
    pc.addEventListener("connectionstatechange", () => {
      if (S.call === call && (pc.connectionState === "failed" || pc.connectionState === "closed")) endLocal("通话连接已断开");
    });
    render();
    // the console opens the call's conversation, with the full customer 360 in its right column
    dropPop(o.call_id);
    if (o.conversation_id) agent().select(o.conversation_id).catch(() => {});
  }

  async function reject() {
    const o = S.offer;
    if (!o) return;
    S.offer = null;
    render();
    try { await api("POST", "/api/v1/calls/" + o.call_id + "/softphone/reject"); toast("已拒接，来电将转给其他坐席", "ok"); }
    catch (e) { toast(e.message, "error"); }
  }

  function endLocal(text) {
    const c = S.call;
    if (!c) return;
    S.call = null;
    try { c.pc.close(); } catch (e) { /* already closed */ }
    c.stream.getTracks().forEach((t) => t.stop());
    $("softphone-audio").srcObject = null;
    render();
    if (text) toast(text, "ok", 2500);
    agent().refresh();
  }

  async function hangup() {
    const c = S.call;
    if (!c) return;
    try { await api("POST", "/api/v1/calls/" + c.id + "/softphone/hangup"); }
    catch (e) { if (e.status !== 404) toast(e.message, "error"); }
    endLocal("通话已挂断");
  }

  function toggleMute() {
    const c = S.call;
    if (!c) return;
    c.muted = !c.muted;
    c.stream.getAudioTracks().forEach((t) => { t.enabled = !c.muted; });
    render();
  }

  async function toggleHold() {
    const c = S.call;
    if (!c) return;
    const btn = $("call-hold");
    if (btn) btn.disabled = true;
    try {
      await api("POST", "/api/v1/calls/" + c.id + "/softphone/hold", { on: !c.held });
      c.held = !c.held;
      toast(c.held ? "已保持，来电人正在听等待音" : "已恢复通话", "ok", 1800);
    } catch (e) { toast(e.message, "error"); }
    render();
  }

  function transfer() {
    const c = S.call;
    if (!c) return;
    agent().openTransfer({ id: c.id, conversation_id: c.conversation_id, done: () => endLocal("已转接，来电人等待新坐席接听") });
  }

  // ------------------------------------------------------------------ frames

  async function nameOf(f) {
    if (!f.customer_id) return null;
    try { return (await api("GET", "/api/v1/customers/" + f.customer_id)).name; } catch (e) { return null; }
  }

  window.addEventListener("gasdesk:call", async (ev) => {
    const f = ev.detail;
    switch (f.type) {
      case "call_ringing":
        screenPop(f);
        break;
      case "call_offered":
        if (f.agent_id !== ME || (S.call && S.call.id === f.call_id)) break;
        S.offer = Object.assign({}, f);
        screenPop(f);
        render();
        toast("热线来电，请接听", "ok", 3000);
        nameOf(f).then((name) => { if (S.offer && S.offer.call_id === f.call_id && name) { S.offer.name = name; render(); } });
        break;
      case "call_offer_withdrawn":
        if (S.offer && S.offer.call_id === f.call_id) {
          S.offer = null;
          render();
          if (f.reason !== "rejected") toast("来电已转给其他坐席或已挂断", "ok", 2500);
        }
        break;
      case "call_ended":
        if (S.offer && S.offer.call_id === f.call_id) { S.offer = null; render(); }
        if (S.call && S.call.id === f.call_id) endLocal("通话已结束");
        dropPop(f.call_id);
        break;
      default:
        break;
    }
  });
})();
