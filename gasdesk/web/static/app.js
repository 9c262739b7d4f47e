// Staff pages: behaviour that used to sit in inline attributes (the CSP allows no inline script), and the
// CSRF token on every request htmx makes.
(function () {
  "use strict";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  window.gasdeskCsrfToken = csrfToken;

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
