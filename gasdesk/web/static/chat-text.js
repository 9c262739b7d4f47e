/* Chat text shared by the resident widget (/chat) and the agent console (/agent): clickable links and the
 * length counter. Plain ES2017, no build step; exposes window.gasdeskChatText.
 *
 * Links are built as DOM nodes from the message text, never as HTML: the text stays text, only http(s)
 * addresses become <a> (rel=noopener noreferrer, new tab), anything else (javascript:, data:) stays plain.
 */
(function () {
  "use strict";

  // An address runs until whitespace, a quote or angle bracket, a Chinese character or CJK punctuation
  // (residents write "请看https://example.cn/a，谢谢" or "访问https://example.cn查询"); trailing ASCII
  // punctuation is the sentence's, not the link's.
  var URL_RE = /\bhttps?:\/\/[^\s<>"'\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]+/gi;
  var TRAILING = /[.,;:!?)\]}]+$/;

  function safeHref(candidate) {
    try {
      var url = new URL(candidate);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  /** The text as a DocumentFragment of text nodes and <a> elements for its http(s) addresses. */
  function linkify(text) {
    var fragment = document.createDocumentFragment();
    text = text == null ? "" : String(text);
    var last = 0;
    var match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      var raw = match[0];
      var trail = TRAILING.exec(raw);
      // Keep a closing bracket that belongs to the address (…/wiki/Foo_(bar)).
      if (trail && trail[0].charAt(0) === ")" && raw.indexOf("(") !== -1) trail = null;
      var candidate = trail ? raw.slice(0, raw.length - trail[0].length) : raw;
      var href = safeHref(candidate);
      if (!href) continue;
      if (match.index > last) fragment.appendChild(document.createTextNode(text.slice(last, match.index)));
      var a = document.createElement("a");
      a.href = href;
      a.textContent = candidate;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.className = "chat-link";
      fragment.appendChild(a);
      last = match.index + candidate.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) fragment.appendChild(document.createTextNode(text.slice(last)));
    return fragment;
  }

  /** Characters as the server counts them (code points: an emoji is one, not two UTF-16 units). */
  function length(text) {
    return Array.from(text || "").length;
  }

  /**
   * Show "n / max" under a textarea once the text nears the server's limit (``max_message_chars`` of the
   * page's protocol constants, socket-client.js); past it the counter turns red and ``onOver(true)`` lets the
   * page refuse to send. Nothing is ever cut. Returns the update function, to call after the page changes
   * the value itself (cleared after sending).
   */
  function attachCounter(textarea, counter, onOver) {
    var max = window.gasdeskSocket.protocol().max_message_chars;
    var from = Math.floor(max * 0.8);
    function update() {
      var n = length(textarea.value);
      var over = n > max;
      counter.hidden = n < from;
      counter.textContent = over ? n + " / " + max + "，超出 " + (n - max) + " 字，请删减或分条发送" : n + " / " + max;
      counter.classList.toggle("over", over);
      textarea.setAttribute("aria-invalid", over ? "true" : "false");
      if (onOver) onOver(over);
    }
    textarea.addEventListener("input", update);
    update();
    return update;
  }

  window.gasdeskChatText = { linkify: linkify, length: length, attachCounter: attachCounter };
})();
