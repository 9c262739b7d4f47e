// Staff pages: behaviour that used to sit in inline attributes (the CSP allows no inline script), and the
// CSRF token on every request htmx makes.
(function () {
  "use strict";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  window.gasdeskCsrfToken = csrfToken;

  // Building DOM nodes without innerHTML (text is never parsed as markup), and times shown in Asia/Shanghai:
  // shared by the bell (notifications/static/bell.js) and staff chat (internal_chat/static/ichat.js).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const timeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false });
  window.gasdeskDom = { h, timeFmt };

  // htmx: send the session's CSRF token as a header on every request it makes.
  document.addEventListener("htmx:configRequest", function (ev) {
    const token = csrfToken();
    if (token) ev.detail.headers["X-CSRF-Token"] = token;
  });

  // <form data-confirm="…">: ask before submitting.
  document.addEventListener("submit", function (ev) {
    const form = ev.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) ev.preventDefault();
  }, true);

  // <select data-autosubmit>: submit its form on change.
  document.addEventListener("change", function (ev) {
    const field = ev.target.closest("[data-autosubmit]");
    if (field && field.form) field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
  });
})();
