/* The one WebSocket client of gasdesk's pages: the resident chat (/chat), the agent console (/agent) and the
 * staff bell (every staff page). Plain ES5, no build step; exposes window.gasdeskSocket. Protocol:
 * docs/chat-protocol.md.
 *
 * It owns what keeps a socket alive and frames delivered, so the pages keep only their UI:
 *  - connect, and reconnect with exponential backoff and jitter (at once on `online` or when the page
 *    shows again); no reconnect after a final close (no login, wrong role) unless the page asks;
 *  - a `ping` heartbeat;
 *  - an outbox: frames with a client_msg_id stay until the server acknowledges them, are resent with the
 *    same id after a reconnect (the server dedupes), wait `retry_after_s` on a rate limit, and a socket that
 *    leaves one unanswered past the ack timeout is taken for dead and replaced;
 *  - per-conversation seq tracking: messages applied strictly in seq order, seen ones dropped, a gap held
 *    and asked for again (`resume`, however the page resumes) until it is filled.
 * Every number comes from the server: the page carries gasdesk/realtime/protocol.py's client_protocol() as
 * <script type="application/json" id="gasdesk-protocol"> (web/templates/_socket_client.html).
 */
(function () {
  "use strict";

  var protocolCache = null;

  /** The constants shared with the server (parsed once from the page). */
  function protocol() {
    if (!protocolCache) {
      var node = document.getElementById("gasdesk-protocol");
      if (!node) throw new Error("gasdesk: the page carries no #gasdesk-protocol");
      protocolCache = JSON.parse(node.textContent);
    }
    return protocolCache;
  }

  /** A fresh client_msg_id (a random UUID; old webviews without crypto.randomUUID build one). */
  function newClientMsgId() {
    var c = window.crypto || window.msCrypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function noop() {}

  // ------------------------------------------------------------------ outbox

  /**
   * Frames that must arrive, each under its client_msg_id until acknowledged. `o`: frame(item) → the frame to
   * send (default item.frame); hold(item) → true to keep it back for now; changed(items) after every change
   * (to persist it); acked(item, ack); failed(item, error) (refused for good: removed); delayed(item, error,
   * waitMs) (refused for now: resent then); items: restored items.
   */
  function Outbox(link, o) {
    var P = protocol();
    var items = (o.items || []).filter(function (i) { return i && i.client_msg_id; });
    items.forEach(function (i) { i.sentGen = 0; i.sentAt = 0; i.blockedUntil = 0; });
    var frameOf = o.frame || function (item) { return item.frame; };
    var hold = o.hold || function () { return false; };
    var changed = o.changed || noop;

    function find(cid) {
      for (var i = 0; i < items.length; i++) if (items[i].client_msg_id === cid) return items[i];
      return null;
    }
    function drop(item) {
      items = items.filter(function (i) { return i !== item; });
    }
    function transmit(item) {
      if (!link.isReady() || hold(item) || item.blockedUntil > Date.now()) return;
      var frame = frameOf(item);
      frame.client_msg_id = item.client_msg_id;
      if (link.send(frame)) { item.sentGen = link.generation(); item.sentAt = Date.now(); }
    }

    var box = {
      /** Queue an item (a client_msg_id is made when it has none) and send it if the socket is ready. */
      add: function (item) {
        if (!item.client_msg_id) item.client_msg_id = newClientMsgId();
        item.sentGen = 0; item.blockedUntil = 0;
        items.push(item);
        changed(items);
        transmit(item);
        return item;
      },
      /** Send a failed (or stale) item again under its own id. */
      retry: function (item) {
        drop(find(item.client_msg_id));
        return box.add(item);
      },
      /** The item is delivered (its ack, or its message, arrived): forget it. Returns it, or null. */
      settle: function (cid) {
        var item = cid ? find(cid) : null;
        if (item) { drop(item); changed(items); }
        return item;
      },
      /** Send every item not yet sent on this socket (after a (re)connect, after a wait). */
      flush: function () {
        if (!link.isReady()) return;
        items.forEach(function (item) { if (item.sentGen !== link.generation()) transmit(item); });
        changed(items);
      },
      items: function () { return items.slice(); },
      // --- used by the link
      onAck: function (ack) {
        var item = box.settle(ack.client_msg_id);
        if (item && o.acked) o.acked(item, ack);
        return !!item;
      },
      onError: function (error) {
        var item = error.client_msg_id ? find(error.client_msg_id) : null;
        if (!item) return false;
        if (P.retry_later_codes.indexOf(error.code) >= 0) {
          // Transient: keep it and send it again, same client_msg_id, once the server's wait is over.
          var wait = Math.max(P.retry_min_s, error.retry_after_s || 0) * 1000;
          item.sentGen = 0;
          item.blockedUntil = Date.now() + wait;
          setTimeout(box.flush, wait + P.gap_wait_ms);
          if (o.delayed) o.delayed(item, error, wait);
          return true;
        }
        drop(item);
        changed(items);
        if (o.failed) o.failed(item, error);
        return true;
      },
      onClose: function () { items.forEach(function (i) { i.sentGen = 0; }); },
      overdue: function (now) {
        return items.some(function (i) {
          return i.sentGen === link.generation() && now - i.sentAt > P.ack_timeout_ms;
        });
      }
    };
    return box;
  }

  // ------------------------------------------------------------------ the socket

  /**
   * Open a socket that stays open. Options:
   *  path            "/ws/webchat", "/ws/agent", "/ws/staff"
   *  prepare()       before each attempt; a returned promise is awaited (rejected: try again later)
   *  greeting()      the first frame on a new socket; with one, the socket is ready only once the page calls
   *                  link.ready() (when the server welcomed it); without, it is ready when open
   *  onReady(again)  ready (again: not the first time, so something may have been missed)
   *  onFrame(frame)  every frame but the acks and errors the outbox settled
   *  onClose(event, {wasReady, final}) → "now" (reconnect at once), "stop", or nothing (back off; a final
   *                  close stops)
   *  outbox          options of the Outbox
   */
  function connect(options) {
    var P = protocol();
    var ws = null;
    var gen = 0;
    var ready = false;
    var everReady = false;
    var attempt = 0;
    var stopped = false;
    var timer = null;

    var link = {
      /** Send one frame; false when the socket is not ready (the outbox resends what must arrive). */
      send: function (frame) {
        if (!ready || !ws || ws.readyState !== 1) return false;
        try { ws.send(JSON.stringify(frame)); return true; } catch (e) { return false; }
      },
      /** Send the greeting again (e.g. to be welcomed with fresh state). */
      greet: function () {
        if (!ws || ws.readyState !== 1 || !options.greeting) return false;
        try { ws.send(JSON.stringify(options.greeting())); return true; } catch (e) { return false; }
      },
      /** The server welcomed the greeting: sends may flow (for sockets with a greeting). */
      ready: function () {
        if (!ws || ws.readyState !== 1) return;
        becomeReady();
      },
      reconnectNow: function () {
        if (stopped || (ws && (ws.readyState === 0 || ws.readyState === 1))) return;
        attempt = 0;
        open();
      },
      /** Stop reconnecting (the current socket is left alone). */
      stop: function () { stopped = true; clearTimeout(timer); timer = null; },
      /** Reconnect again after stop() or a final close. */
      start: function () { stopped = false; attempt = 0; open(); },
      socket: function () { return ws; },
      generation: function () { return gen; },
      isReady: function () { return ready; },
      isStopped: function () { return stopped; },
      everReady: function () { return everReady; }
    };
    link.outbox = Outbox(link, options.outbox || {});

    function becomeReady() {
      var again = everReady;
      if (!ready) {
        ready = true;
        everReady = true;
        attempt = 0;
        if (options.onReady) options.onReady(again);
      }
      link.outbox.flush();
    }

    function later() {
      if (stopped || timer) return;
      var delay = Math.min(P.reconnect_max_ms, P.reconnect_first_ms * Math.pow(2, attempt));
      attempt++;
      delay *= 1 - P.reconnect_jitter + Math.random() * 2 * P.reconnect_jitter;
      timer = setTimeout(function () { timer = null; open(); }, Math.round(delay));
    }

    function open() {
      clearTimeout(timer);
      timer = null;
      if (stopped || (ws && (ws.readyState === 0 || ws.readyState === 1))) return;
      var pending = options.prepare ? options.prepare() : null;
      if (pending && typeof pending.then === "function") {
        pending.then(dial, later);
        return;
      }
      dial();
    }

    function dial() {
      if (stopped || (ws && (ws.readyState === 0 || ws.readyState === 1))) return;
      var mine = ++gen;
      var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + options.path;
      var socket;
      try { socket = new WebSocket(url); } catch (e) { later(); return; }
      ws = socket;
      ready = false;
      socket.onopen = function () {
        if (mine !== gen) return;
        if (options.greeting) link.greet();
        else becomeReady();
      };
      socket.onmessage = function (ev) {
        if (mine !== gen) return;
        var frame;
        try { frame = JSON.parse(ev.data); } catch (e) { return; }
        if (!frame || typeof frame !== "object") return;
        if (frame.type === "ack" && link.outbox.onAck(frame)) return;
        if (frame.type === "error" && link.outbox.onError(frame)) return;
        try { if (options.onFrame) options.onFrame(frame); } catch (e) { console.error("gasdesk socket frame failed", e); }
      };
      socket.onclose = function (ev) {
        if (mine !== gen) return;
        ws = null;
        var wasReady = ready;
        ready = false;
        link.outbox.onClose();
        var final = P.final_close_codes.indexOf(ev.code) >= 0;
        var decision = options.onClose ? options.onClose(ev, { wasReady: wasReady, final: final }) : undefined;
        if (decision === "now") { attempt = 0; open(); return; }
        if (decision === "stop" || final) { stopped = true; return; }
        later();
      };
      socket.onerror = noop; // onclose follows
    }

    setInterval(function () { link.send({ type: "ping" }); }, P.heartbeat_ms);
    // A socket can look open while dead (mobile networks, backgrounded webviews): an overdue ack replaces it.
    setInterval(function () {
      if (ws && ws.readyState === 1 && link.outbox.overdue(Date.now())) {
        try { ws.close(); } catch (e) { /* onclose follows */ }
      }
    }, P.ack_timeout_ms / 5);
    window.addEventListener("online", link.reconnectNow);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) link.reconnectNow(); });

    open();
    return link;
  }

  // ------------------------------------------------------------------ seq tracking

  /**
   * The seq line of one conversation. `o`: apply(message) for each message in order; resume(afterSeq) to ask
   * for what is missing (a `resume` frame, a REST fetch…); duplicate(message) for one already seen;
   * canResume() → false while asking is pointless (not connected). `lastSeq` is the last applied seq.
   */
  function SeqTracker(o) {
    var P = protocol();
    var timer = null;
    var tries = 0;
    var expected = 0;
    var t = {
      lastSeq: 0,
      buffer: {},
      /** Start over at `lastSeq` (another conversation, or what a cache holds). */
      reset: function (lastSeq) {
        t.lastSeq = lastSeq || 0;
        t.buffer = {};
        expected = 0;
        tries = 0;
        clearTimeout(timer);
        timer = null;
      },
      /** Take one message: applied (with any held ones it releases) when next in line, dropped when seen,
       *  held when it leaves a gap (then asked for). True when it was applied. */
      accept: function (m) {
        if (!(m.seq > t.lastSeq) || t.buffer[m.seq]) {
          if (o.duplicate) o.duplicate(m);
          return false;
        }
        if (m.seq !== t.lastSeq + 1) {
          t.buffer[m.seq] = m;
          schedule(P.gap_wait_ms);
          return false;
        }
        step(m);
        while (t.buffer[t.lastSeq + 1]) {
          var next = t.buffer[t.lastSeq + 1];
          delete t.buffer[t.lastSeq + 1];
          step(next);
        }
        if (!Object.keys(t.buffer).length) tries = 0;
        return true;
      },
      /** The server has messages up to `seq` (an ack, a welcome): ask for them if they do not arrive. */
      expect: function (seq) {
        if (!(seq > t.lastSeq)) return;
        expected = Math.max(expected, seq);
        schedule(P.resume_retry_ms);
      },
      /** Check now whether anything is missing (after a reconnect). */
      check: function () { schedule(0); }
    };

    function step(m) {
      t.lastSeq = m.seq;
      o.apply(m);
    }

    function schedule(delay) {
      if (timer) return;
      timer = setTimeout(check, delay);
    }

    function check() {
      timer = null;
      var waiting = Object.keys(t.buffer).map(Number).sort(function (a, b) { return a - b; });
      if (!waiting.length && !(expected > t.lastSeq)) { tries = 0; return; }
      if (o.canResume && !o.canResume()) return; // the page checks again once it is connected
      tries++;
      if (tries > P.resume_max_tries) {
        // The server keeps seq gap-free, so this should never happen: show what we have rather than stall.
        waiting.forEach(function (seq) { var m = t.buffer[seq]; delete t.buffer[seq]; step(m); });
        expected = 0;
        tries = 0;
        return;
      }
      o.resume(t.lastSeq);
      schedule(P.resume_retry_ms * tries); // check again; stops once the gap is filled
    }

    return t;
  }

  window.gasdeskSocket = {
    protocol: protocol,
    newClientMsgId: newClientMsgId,
    connect: connect,
    SeqTracker: SeqTracker
  };
})();
