/* gasdesk video assist (视频协助), the resident's side, in the chat widget (/chat, also inside WeChat's webview).
 * Plain JS, no build step. The chat (webchat/static/chat.js) passes the socket's "video" frames as "gasdesk:video"
 * window events and lends its socket (window.gasdeskChat.send). Nothing happens without the resident: an
 * invitation shows a consent prompt; only after 同意 and the server's "started" answer is the camera opened
 * (the rear one, no microphone). The resident offers, the agent answers; candidates trickle both ways.
 * The resident can stop at any time (结束视频); the agent's end stops the camera here too. */
(function () {
  "use strict";

  const S = {
    invite: null, // the "invite" frame waiting for an answer
    session: null, // id of the accepted session
    pc: null,
    stream: null,
    pendingIce: [],
  };
  window.gasdeskVideoResident = { state: S, stop: () => stop("hangup", true) };

  const chat = () => window.gasdeskChat;
  const send = (frame) => !!(chat() && chat().send && chat().send(frame));

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== false && v != null) node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach((c) => node.appendChild(typeof c === "string" ? document.createTextNode(c) : c));
    return node;
  }

  function remove(id) {
    const node = document.getElementById(id);
    if (node) node.remove();
  }

  function note(text) {
    const bar = document.getElementById("error-bar");
    const out = document.getElementById("error-text");
    if (bar && out) { out.textContent = text; bar.hidden = false; }
  }

  // ------------------------------------------------------------------ consent

  function showConsent(f) {
    S.invite = f;
    remove("video-consent");
    const who = f.agent_name ? "客服 " + f.agent_name + " " : "客服";
    const recording = f.recording_requested ? el("label", { class: "gd-video-check" }, [
      el("input", { type: "checkbox", id: "video-consent-recording" }),
      " 同意客服录制本次视频（可选；录像保存在本次会话记录中）",
    ]) : null;
    const box = el("div", { class: "gd-video-consent", id: "video-consent", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "video-consent-title" }, [
      el("h2", { id: "video-consent-title", text: "视频协助邀请" }),
      el("p", { text: who + "邀请您开启视频协助：用手机后置摄像头拍摄燃气表、灶具、管道等设备，画面实时传给客服，" +
        "不传输声音。您可以随时点击“结束视频”停止。" }),
      el("p", { class: "gd-video-small", text: "同意后浏览器会询问摄像头权限。客服可截取画面作为会话记录中的图片。" }),
      ...(recording ? [recording] : []),
      el("div", { class: "gd-video-actions" }, [
        el("button", { type: "button", class: "gd-video-secondary", id: "video-decline", text: "拒绝", onclick: decline }),
        el("button", { type: "button", id: "video-accept", text: "同意并开启摄像头", onclick: accept }),
      ]),
    ]);
    document.body.appendChild(box);
    document.getElementById("video-accept").focus();
  }

  function accept() {
    if (!S.invite) return;
    const box = document.getElementById("video-consent-recording");
    const frame = { type: "video_accept", session_id: S.invite.session_id, recording: !!(box && box.checked) };
    if (!send(frame)) { note("网络未连接，请稍后再试"); return; }
    document.getElementById("video-accept").disabled = true; // the camera opens on the server's "started"
  }

  function decline() {
    if (S.invite) send({ type: "video_decline", session_id: S.invite.session_id });
    S.invite = null;
    remove("video-consent");
  }

  // ------------------------------------------------------------------ the live video

  async function start(f) {
    remove("video-consent");
    S.invite = null;
    S.session = f.session_id;
    S.pendingIce = [];
    let stream;
    try {
      // The rear camera, no sound: the resident agreed to show a meter, not to be heard.
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (e) {
      send({ type: "video_end", session_id: f.session_id, reason: "camera_error" });
      S.session = null;
      note("无法打开摄像头，请在浏览器设置中允许使用摄像头后重试");
      return;
    }
    if (S.session !== f.session_id) { stream.getTracks().forEach((t) => t.stop()); return; } // ended meanwhile
    S.stream = stream;
    showLive(f, stream);
    const pc = new RTCPeerConnection({ iceServers: f.ice_servers || [] });
    S.pc = pc;
    stream.getVideoTracks().forEach((track) => pc.addTransceiver(track, { direction: "sendonly", streams: [stream] }));
    pc.onicecandidate = (ev) => {
      if (ev.candidate && ev.candidate.candidate) {
        send({ type: "video_ice", session_id: f.session_id, candidate: ev.candidate.toJSON() });
      }
    };
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      setLiveStatus(state === "connected" ? "客服正在查看您的画面" : state === "failed" ? "连接失败" : "正在连接…");
      if (state === "failed" && S.pc === pc) stop("connection_failed", true);
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    send({ type: "video_offer", session_id: f.session_id, sdp: pc.localDescription.sdp });
  }

  function showLive(f, stream) {
    remove("video-live");
    const preview = el("video", { id: "video-preview", autoplay: true, playsinline: true, muted: true });
    preview.muted = true;
    preview.srcObject = stream;
    const panel = el("div", { class: "gd-video-live", id: "video-live", role: "region", "aria-label": "视频协助" }, [
      preview,
      el("div", { class: "gd-video-bar" }, [
        el("span", { id: "video-live-status", role: "status", text: "正在连接…" }),
        f.consent_recording ? el("span", { class: "gd-video-rec", text: "已同意录制" }) : "",
        el("button", { type: "button", id: "video-stop", text: "结束视频", onclick: () => stop("hangup", true) }),
      ]),
    ]);
    document.body.appendChild(panel);
  }

  function setLiveStatus(text) {
    const out = document.getElementById("video-live-status");
    if (out) out.textContent = text;
  }

  async function onAnswer(f) {
    if (!S.pc || f.session_id !== S.session) return;
    await S.pc.setRemoteDescription({ type: "answer", sdp: f.sdp });
    const queued = S.pendingIce.splice(0);
    for (const c of queued) await S.pc.addIceCandidate(c).catch(() => {});
  }

  function onIce(f) {
    if (!S.pc || f.session_id !== S.session) return;
    if (!S.pc.remoteDescription) { S.pendingIce.push(f.candidate); return; }
    S.pc.addIceCandidate(f.candidate).catch(() => {});
  }

  function stop(reason, tellServer) {
    const id = S.session;
    if (tellServer && id) send({ type: "video_end", session_id: id, reason });
    if (S.pc) S.pc.close();
    if (S.stream) S.stream.getTracks().forEach((t) => t.stop());
    S.pc = null;
    S.stream = null;
    S.session = null;
    remove("video-live");
  }

  function onEnded(f) {
    if (S.invite && S.invite.session_id === f.session_id) { S.invite = null; remove("video-consent"); }
    if (S.session !== f.session_id) return;
    stop(null, false);
    if (f.ended_by !== "resident") note("客服已结束视频协助");
  }

  function onRefused(f) {
    // The server refused an answer (the invitation was withdrawn or superseded): drop the prompt.
    if (f.request_type === "video_accept" || f.request_type === "video_decline") { S.invite = null; remove("video-consent"); }
    if (f.request_type === "video_offer" && S.session) stop(null, false);
  }

  window.addEventListener("gasdesk:video", (ev) => {
    const f = ev.detail || {};
    switch (f.kind) {
      case "invite": return showConsent(f);
      case "started": return start(f).catch(() => stop("connection_failed", true));
      case "answer": return onAnswer(f).catch(() => stop("connection_failed", true));
      case "ice": return onIce(f);
      case "ended": return onEnded(f);
      case "error": return onRefused(f);
      default: return undefined;
    }
  });
  // Leaving the page ends the video (best effort: the socket may already be gone).
  window.addEventListener("pagehide", () => { if (S.session) stop("page_closed", true); });
})();
