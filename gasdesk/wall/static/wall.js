/* The wall screen: renders the snapshot in the page, then every snapshot /ws/wall pushes (gasdesk/wall/live.py).
 * The longest wait keeps counting between pushes (from the oldest queued time) and is coloured by the
 * thresholds the snapshot carries. The trend is drawn as inline SVG (no chart library, no CDN). */
(function () {
  "use strict";
  var S = { snapshot: null, received: 0, offset: 0 };
  function $(id) { return document.getElementById(id); }
  function text(id, value) { var n = $(id); if (n) n.textContent = value; }
  function level(value, t) {
    if (!t || value === null || value === undefined) return "ok";
    if (t.red !== null && t.red !== undefined && value > t.red) return "red";
    if (t.amber !== null && t.amber !== undefined && value > t.amber) return "amber";
    return "ok";
  }
  function pct(v) { return v === null || v === undefined ? "—" : v.toFixed(1) + "%"; }
  function rows(id, items) {
    var ul = $(id);
    while (ul.firstChild) ul.removeChild(ul.firstChild);
    items.forEach(function (it) {
      var li = document.createElement("li");
      if (it.level) li.setAttribute("data-level", it.level);
      if (it.key) li.setAttribute("data-key", it.key);
      var name = document.createElement("span"); name.textContent = it.name;
      var num = document.createElement("b"); num.textContent = it.value;
      li.appendChild(name); li.appendChild(num); ul.appendChild(li);
    });
  }
  function setLevel(id, lv) { var n = $(id); if (n) n.setAttribute("data-level", lv); }

  function tickWait() {
    var s = S.snapshot;
    if (!s) return;
    var q = s.queue, seconds = 0;
    if (q.oldest_queued_at && q.total > 0) {
      seconds = Math.max(0, Math.floor((Date.now() + S.offset - Date.parse(q.oldest_queued_at)) / 1000));
    }
    if (seconds >= 60) { text("longest-wait", Math.floor(seconds / 60) + ":" + ("0" + seconds % 60).slice(-2)); text("longest-unit", "分:秒"); }
    else { text("longest-wait", String(seconds)); text("longest-unit", "秒"); }
    setLevel("tile-longest", q.total > 0 ? level(seconds, s.thresholds.longest_wait_s) : "ok");
    var now = new Date();
    text("wall-clock", ("0" + now.getHours()).slice(-2) + ":" + ("0" + now.getMinutes()).slice(-2) + ":" + ("0" + now.getSeconds()).slice(-2));
  }

  function trend(t) {
    var box = $("trend"), w = box.clientWidth || 1600, h = box.clientHeight || 200, pad = 36;
    var pts = t.trend, max = 1;
    pts.forEach(function (p) { if (p.count > max) max = p.count; });
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("preserveAspectRatio", "none");
    function el(name, attrs, content) {
      var e = document.createElementNS(ns, name);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      if (content !== undefined) e.textContent = content;
      svg.appendChild(e); return e;
    }
    var n = Math.max(pts.length, 2);
    function x(i) { return pad + (w - 2 * pad) * i / (n - 1); }
    function y(v) { return h - pad - (h - 2 * pad) * v / max; }
    var ticks = max >= 4 ? [0, Math.round(max / 2), max] : [0, max]; // whole contacts only
    ticks.forEach(function (v) {
      el("line", { "class": "grid", x1: pad, x2: w - pad, y1: y(v), y2: y(v) });
      el("text", { "class": "axis", x: 2, y: y(v) + 5 }, String(v));
    });
    if (pts.length) {
      var d = pts.map(function (p, i) { return (i ? "L" : "M") + x(i).toFixed(1) + "," + y(p.count).toFixed(1); }).join(" ");
      el("path", { "class": "area", d: d + " L" + x(pts.length - 1).toFixed(1) + "," + y(0) + " L" + x(0) + "," + y(0) + " Z" });
      el("path", { "class": "line", d: d });
      var step = Math.max(1, Math.ceil(pts.length / 12));
      pts.forEach(function (p, i) { if (i % step === 0) el("text", { "class": "axis", x: x(i) - 18, y: h - 8 }, p.at); });
    }
    while (box.firstChild) box.removeChild(box.firstChild);
    box.appendChild(svg);
  }

  function render(s) {
    S.snapshot = s; S.received++;
    S.offset = Date.parse(s.at) - Date.now();
    var q = s.queue;
    text("waiting-total", String(q.total)); setLevel("tile-waiting", q.level);
    rows("by-group", q.by_group.map(function (g) { return { key: "group-" + g.id, name: g.name, value: g.waiting, level: g.level }; }));
    rows("by-channel", q.by_channel.map(function (c) { return { key: "channel-" + c.channel, name: c.label, value: c.waiting }; }));
    var a = s.agents.by_presence.map(function (p) { return { key: "presence-" + p.presence, name: p.label, value: p.count }; });
    a.push({ key: "on-call", name: "通话中", value: s.agents.on_call });
    rows("agents", a);
    text("today-contacts", String(s.today.contacts));
    text("today-ai", pct(s.today.ai_rate));
    text("today-transfer", pct(s.today.transfer_rate));
    text("today-csat", s.today.csat === null || s.today.csat === undefined ? "—" : s.today.csat.toFixed(1) + " 分");
    text("emergencies", String(s.tickets.emergencies)); setLevel("tile-emergencies", s.tickets.emergencies_level);
    text("sla-at-risk", String(s.tickets.sla_at_risk)); setLevel("tile-sla-risk", s.tickets.sla_at_risk_level);
    text("sla-breached", String(s.tickets.sla_breached)); setLevel("tile-sla-breached", s.tickets.sla_breached_level);
    text("trend-step", String(s.today.trend_minutes));
    trend(s.today);
    tickWait();
  }

  var conn = $("wall-conn");
  function connState(ok) { conn.className = "conn " + (ok ? "ok" : "down"); conn.textContent = ok ? "● 实时" : "● 已断开，重连中"; }
  render(JSON.parse($("wall-initial").textContent));
  setInterval(tickWait, 1000);
  var link = window.gasdeskSocket.connect({
    path: "/ws/wall",
    onReady: function () { connState(true); },
    onFrame: function (f) { if (f.type === "snapshot") render(f.snapshot); },
    onClose: function () { connState(false); }
  });
  Object.defineProperty(S, "open", { get: function () { return link.isReady(); } });
  window.gasdeskWall = S; // tests and debugging
})();
