/* gasdesk chat widget. Embed in any page:
 *   <script src="https://客服域名/widget.js" defer data-title="在线客服" data-color="#0b6e4f"></script>
 * Adds a floating button (bottom-right) that opens the resident chat (<script origin>/chat) in an iframe.
 * On small screens the panel is full screen. No dependencies; styles are isolated in a shadow root.
 */
(function () {
  "use strict";
  if (window.__gasdeskWidget) return;

  var script = document.currentScript;
  if (!script) {
    // Very old browsers: find our own tag.
    var tags = document.getElementsByTagName("script");
    for (var i = tags.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(tags[i].src || "")) { script = tags[i]; break; }
    }
  }
  var origin;
  try { origin = new URL(script.src, location.href).origin; } catch (e) { origin = location.origin; }
  var title = (script && script.getAttribute("data-title")) || "在线客服";
  var color = (script && script.getAttribute("data-color")) || "#0b6e4f";
  if (!/^#[0-9a-fA-F]{3,8}$/.test(color)) color = "#0b6e4f";
  var chatUrl = origin + "/chat?embed=1&color=" + encodeURIComponent(color);

  var css = [
    ":host{all:initial}",
    ".gdw{font-family:\"PingFang SC\",\"Noto Sans CJK SC\",\"Microsoft YaHei\",system-ui,sans-serif;--c:" + color + "}",
    ".gdw *{box-sizing:border-box}",
    ".gdw-btn{position:fixed;z-index:2147483000;right:calc(16px + env(safe-area-inset-right,0px));",
    "bottom:calc(16px + env(safe-area-inset-bottom,0px));display:flex;align-items:center;gap:6px;border:0;",
    "border-radius:999px;background:var(--c);color:#fff;font-family:inherit;font-size:15px;font-weight:600;line-height:1;padding:12px 18px;",
    "box-shadow:0 6px 20px rgba(0,0,0,.22);cursor:pointer;min-height:48px;touch-action:manipulation}",
    ".gdw-btn:focus-visible,.gdw-close:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}",
    ".gdw-btn svg{width:22px;height:22px;fill:currentColor}",
    ".gdw-dot{width:10px;height:10px;border-radius:50%;background:#ef4444;border:2px solid #fff;margin-left:2px}",
    ".gdw-panel{position:fixed;z-index:2147483001;right:calc(16px + env(safe-area-inset-right,0px));",
    "bottom:calc(80px + env(safe-area-inset-bottom,0px));width:380px;height:620px;max-height:calc(100vh - 100px);",
    "background:#fff;border-radius:14px;overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.28);display:flex;flex-direction:column}",
    ".gdw-panel[hidden],.gdw-btn[hidden],.gdw-dot[hidden]{display:none}",
    ".gdw-head{flex:none;display:flex;align-items:center;justify-content:space-between;background:var(--c);color:#fff;",
    "padding:calc(6px + env(safe-area-inset-top,0px)) 8px 6px 14px;font-size:15px;font-weight:700;line-height:1.4}",
    ".gdw-close{border:0;background:transparent;color:#fff;font-size:26px;line-height:1;width:44px;height:40px;cursor:pointer;border-radius:6px}",
    ".gdw-frame{flex:1;width:100%;border:0;display:block;background:#f3f5f7}",
    "@media (max-width:600px),(max-height:560px){.gdw-panel{inset:0;right:0;bottom:0;width:100%;height:100%;",
    "max-height:none;border-radius:0}}",
    ".gdw-panel.gdw-full{top:0;left:0;right:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0}"
  ].join("");

  var host = document.createElement("div");
  host.setAttribute("data-gasdesk-widget", "");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var wrap = document.createElement("div");
  wrap.className = "gdw";
  var style = document.createElement("style");
  style.textContent = host.attachShadow ? css : css.replace(":host{all:initial}", "");
  root.appendChild(style);
  root.appendChild(wrap);

  var button = document.createElement("button");
  button.type = "button";
  button.className = "gdw-btn";
  button.setAttribute("aria-haspopup", "dialog");
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-label", "打开" + title);
  button.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 3C6.5 3 2 6.6 2 11c0 2.4 1.3 4.6 3.5 6.1L5 21l4.2-2.3c.9.2 1.8.3 2.8.3 5.5 0 10-3.6 10-8s-4.5-8-10-8z"/></svg>';
  var label = document.createElement("span");
  label.textContent = title;
  var dot = document.createElement("span");
  dot.className = "gdw-dot";
  dot.hidden = true;
  dot.setAttribute("aria-label", "有新消息");
  button.appendChild(label);
  button.appendChild(dot);

  var panel = document.createElement("div");
  panel.className = "gdw-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  var head = document.createElement("div");
  head.className = "gdw-head";
  var headTitle = document.createElement("span");
  headTitle.textContent = title;
  var close = document.createElement("button");
  close.type = "button";
  close.className = "gdw-close";
  close.setAttribute("aria-label", "关闭" + title);
  close.textContent = "×";
  head.appendChild(headTitle);
  head.appendChild(close);
  panel.appendChild(head);

  var frame = null;
  var isOpen = false;
  var savedOverflow = null;

  function small() {
    if (!window.matchMedia) return false;
    if (window.matchMedia("(max-width:600px),(max-height:560px)").matches) return true;
    // A phone showing a page without a viewport meta has a ~980px layout viewport: go by the device instead.
    var s = window.screen || {};
    return window.matchMedia("(pointer:coarse)").matches && Math.min(s.width || 9999, s.height || 9999) <= 600;
  }

  function open() {
    if (!frame) {
      // Created on first open and then kept, so the chat keeps its connection while the panel is closed.
      frame = document.createElement("iframe");
      frame.className = "gdw-frame";
      frame.title = title;
      frame.src = chatUrl;
      frame.setAttribute("allow", "clipboard-write; camera"); // camera: video assist (视频协助), after the resident consents
      panel.appendChild(frame);
    }
    isOpen = true;
    panel.classList.toggle("gdw-full", small());
    panel.hidden = false;
    button.hidden = small();
    dot.hidden = true;
    button.setAttribute("aria-expanded", "true");
    if (small()) {
      savedOverflow = document.documentElement.style.overflow;
      document.documentElement.style.overflow = "hidden"; // no background scrolling behind a full-screen chat
    }
    try { frame.focus(); } catch (e) { /* ignore */ }
  }

  function hide() {
    isOpen = false;
    panel.hidden = true;
    button.hidden = false;
    button.setAttribute("aria-expanded", "false");
    if (savedOverflow !== null) { document.documentElement.style.overflow = savedOverflow; savedOverflow = null; }
    button.focus();
  }

  button.addEventListener("click", function () { if (isOpen) hide(); else open(); });
  close.addEventListener("click", hide);
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && isOpen) hide(); });
  window.addEventListener("message", function (ev) {
    if (ev.origin !== origin || !ev.data || ev.data.source !== "gasdesk-chat") return;
    if (ev.data.type === "message" && !isOpen) dot.hidden = false;
  });

  wrap.appendChild(panel);
  wrap.appendChild(button);

  function mount() { (document.body || document.documentElement).appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  window.__gasdeskWidget = { open: open, close: hide };
})();
