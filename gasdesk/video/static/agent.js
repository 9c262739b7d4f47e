/* gasdesk video assist (视频协助), the agent's side, in the console (/agent). Plain JS, no build step.
 * The console (conversations/static/agent.js) passes its socket's "video" frames as "gasdesk:video" window events
 * and lends its socket (window.gasdeskAgent.link). 视频协助 invites the selected conversation's resident; once
 * they accept, their browser offers a one-way video and this page answers (receive only). 截图 draws the video on a
 * canvas and uploads a JPEG, which becomes a picture message of the conversation. 开始录制 exists only when the
 * resident agreed to be recorded: MediaRecorder (WebM) on this side, uploaded when it stops, kept under the cap. */
(function () {
  "use strict";

  const panel = document.getElementById("video-panel");
  if (!panel) return;
  const $ = (id) => document.getElementById(id);
  const config = JSON.parse($("video-config").textContent || "{}");
  const RECORD_SLICE_MS = 1000;
  const RECORD_HEADROOM = 512 * 1024; // stop this far below the server's cap: the last slice still fits

  const S = {
    session: null, // the session id of the invitation or video shown here
    conversationId: null,
    consentRecording: false,
    pc: null,
    pendingIce: [],
    recorder: null,
    chunks: [],
    recordedBytes: 0,
    snapshots: 0,
  };
  window.gasdeskVideo = { state: S, invite, end, snapshot, toggleRecording };

  const agent = () => window.gasdeskAgent;
  const toast = (text, kind) => agent() && agent().toast(text, kind);
  const send = (frame) => !!(agent() && agent().link.send(frame));

  function status(text) { $("video-status").textContent = text; }

  // ------------------------------------------------------------------ invitation

  function openInvite() {
    const cid = agent() && agent().state.selectedId;
    if (!cid) { toast("请先选择会话", "error"); return; }
    if (S.session) { toast("已有进行中的视频协助，请先结束", "error"); return; }
    $("video-invite-recording").checked = false;
    $("video-invite-dialog").showModal();
  }

  function invite(recording) {
    const cid = agent() && agent().state.selectedId;
    if (!cid) return false;
    const frame = { type: "video_invite", conversation_id: cid, recording: !!recording };
    if (!send(frame)) { toast("实时连接已断开，请稍后再试", "error"); return false; }
    S.conversationId = cid;
    return true;
  }

  function onInvited(f) {
    S.session = f.session_id;
    S.conversationId = f.conversation_id;
    S.consentRecording = false;
    S.snapshots = 0;
    panel.hidden = false;
    $("video-snapshot").disabled = true;
    $("video-record").hidden = true;
    status("已发送邀请，等待居民同意…");
  }

  function onAccepted(f) {
    if (f.session_id !== S.session) return;
    S.consentRecording = !!f.consent_recording;
    $("video-record").hidden = !S.consentRecording;
    status(S.consentRecording ? "居民已同意（含录制），正在连接…" : "居民已同意，正在连接…");
  }

  // ------------------------------------------------------------------ the video (receive only)

  async function onOffer(f) {
    if (f.session_id !== S.session) return;
    if (S.pc) S.pc.close();
    const pc = new RTCPeerConnection({ iceServers: config.ice_servers || [] });
    S.pc = pc;
    pc.ontrack = (ev) => {
      const video = $("video-remote");
      video.srcObject = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      video.play().catch(() => {});
    };
    pc.onicecandidate = (ev) => {
      if (ev.candidate && ev.candidate.candidate) {
        send({ type: "video_ice", session_id: f.session_id, candidate: ev.candidate.toJSON() });
      }
    };
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      if (state === "connected") { status("视频已接通"); $("video-snapshot").disabled = false; }
      else if (state === "failed") { status("连接失败"); if (S.pc === pc) end("connection_failed"); }
    };
    await pc.setRemoteDescription({ type: "offer", sdp: f.sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    send({ type: "video_answer", session_id: f.session_id, sdp: pc.localDescription.sdp });
    const queued = S.pendingIce.splice(0);
    for (const c of queued) await pc.addIceCandidate(c).catch(() => {});
  }

  function onIce(f) {
    if (f.session_id !== S.session) return;
    if (!S.pc || !S.pc.remoteDescription) { S.pendingIce.push(f.candidate); return; }
    S.pc.addIceCandidate(f.candidate).catch(() => {});
  }

  function cleanup() {
    if (S.recorder && S.recorder.state !== "inactive") S.recorder.stop(); // its onstop uploads what was recorded
    if (S.pc) S.pc.close();
    S.pc = null;
    S.pendingIce = [];
    S.session = null;
    const video = $("video-remote");
    video.srcObject = null;
    panel.hidden = true;
  }

  function end(reason) {
    if (S.session) send({ type: "video_end", session_id: S.session, reason: reason || "hangup" });
    cleanup();
  }

  function onEnded(f) {
    if (f.session_id !== S.session) return;
    if (f.ended_by === "resident") toast(f.reason === "camera_error" ? "居民的摄像头无法打开，视频协助已结束" : "居民已结束视频协助");
    else if (f.ended_by === "system") toast("视频协助已结束");
    cleanup();
  }

  function onDeclined(f) {
    if (f.session_id !== S.session) return;
    toast("居民拒绝了视频协助");
    cleanup();
  }

  // ------------------------------------------------------------------ snapshots and recording

  async function upload(kind, blob, filename) {
    const sessionId = S.session || S.lastSession;
    const form = new FormData();
    form.append("file", blob, filename);
    const res = await fetch("/api/v1/video/" + sessionId + "/" + kind, {
      method: "POST", credentials: "same-origin", body: form,
      headers: { Accept: "application/json", "X-CSRF-Token": window.gasdeskCsrfToken ? window.gasdeskCsrfToken() : "" },
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || ("上传失败（" + res.status + "）"));
    return data;
  }

  function stamp() { return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, ""); }

  async function snapshot() {
    const video = $("video-remote");
    if (!S.session || !video.videoWidth) { toast("画面尚未接通", "error"); return null; }
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    $("video-snapshot").disabled = true;
    try {
      const out = await upload("snapshots", blob, "视频截图-" + stamp() + ".jpg");
      S.snapshots = out.session.snapshot_count;
      toast("截图已保存到会话记录");
      return out;
    } catch (e) {
      toast(e.message, "error");
      return null;
    } finally {
      $("video-snapshot").disabled = !S.session;
    }
  }

  function toggleRecording() {
    if (S.recorder && S.recorder.state !== "inactive") { S.recorder.stop(); return; }
    const video = $("video-remote");
    if (!S.consentRecording || !video.srcObject) return;
    const type = ["video/webm;codecs=vp8", "video/webm"].find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t));
    if (!type) { toast("此浏览器不支持录制", "error"); return; }
    const recorder = new MediaRecorder(video.srcObject, { mimeType: type, videoBitsPerSecond: 600000 });
    S.recorder = recorder;
    S.chunks = [];
    S.recordedBytes = 0;
    S.lastSession = S.session;
    recorder.ondataavailable = (ev) => {
      if (!ev.data || !ev.data.size) return;
      S.chunks.push(ev.data);
      S.recordedBytes += ev.data.size;
      if (S.recordedBytes > (config.recording_max_bytes || 0) - RECORD_HEADROOM && recorder.state === "recording") {
        toast("录像已达大小上限，已自动停止");
        recorder.stop();
      }
    };
    recorder.onstop = () => {
      const button = $("video-record");
      button.textContent = "开始录制";
      button.classList.remove("video-rec-on");
      const blob = new Blob(S.chunks, { type: "video/webm" });
      S.chunks = [];
      if (!blob.size) return;
      upload("recordings", blob, "视频录像-" + stamp() + ".webm")
        .then(() => toast("录像已保存到会话记录"), (e) => toast(e.message, "error"));
    };
    recorder.start(RECORD_SLICE_MS);
    $("video-record").textContent = "停止录制";
    $("video-record").classList.add("video-rec-on");
  }

  // ------------------------------------------------------------------ wiring

  $("btn-video").addEventListener("click", openInvite);
  $("video-invite-dialog").addEventListener("close", () => {
    if ($("video-invite-dialog").returnValue === "yes") invite($("video-invite-recording").checked);
  });
  $("video-end").addEventListener("click", () => end("hangup"));
  $("video-snapshot").addEventListener("click", () => { snapshot(); });
  $("video-record").addEventListener("click", toggleRecording);

  window.addEventListener("gasdesk:video", (ev) => {
    const f = ev.detail || {};
    switch (f.kind) {
      case "invited": return onInvited(f);
      case "accepted": return onAccepted(f);
      case "declined": return onDeclined(f);
      case "offer": return onOffer(f).catch(() => end("connection_failed"));
      case "ice": return onIce(f);
      case "ended": return onEnded(f);
      case "error":
        if (f.request_type === "video_answer" && S.session) cleanup();
        return undefined;
      default: return undefined;
    }
  });
  window.addEventListener("pagehide", () => { if (S.session) end("page_closed"); });
})();
