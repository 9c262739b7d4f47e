// Work-order pages: small helpers only; htmx does the requests.
(function () {
  "use strict";

  // Crew write-back: add another material row.
  document.addEventListener("click", function (ev) {
    const add = ev.target.closest("[data-add-material]");
    if (add) {
      ev.preventDefault();
      const rows = document.getElementById("materials");
      const row = rows.querySelector(".mat-row").cloneNode(true);
      row.querySelectorAll("input").forEach(function (i) { i.value = ""; });
      rows.appendChild(row);
      row.querySelector("input").focus();
    }
    // Create form: pick a customer from the search results.
    const pick = ev.target.closest("[data-pick-customer]");
    if (pick) {
      ev.preventDefault();
      const field = document.getElementById("customer_id");
      field.value = pick.dataset.pickCustomer;
      document.getElementById("customer-picked").textContent = "已选择：" + pick.dataset.label;
      if (pick.dataset.phone && !document.getElementById("contact_phone").value) {
        document.getElementById("contact_phone").value = pick.dataset.phone;
      }
      field.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });

  // htmx: show non-2xx answers (422/409 JSON) as a Chinese message instead of silently doing nothing.
  document.addEventListener("htmx:responseError", function (ev) {
    let message = "操作失败（" + ev.detail.xhr.status + "）";
    try {
      const body = JSON.parse(ev.detail.xhr.responseText);
      if (body && body.error && body.error.message) message = body.error.message;
    } catch (_) { /* an HTML fragment */ }
    const box = document.getElementById("flash");
    if (box) { box.textContent = message; box.hidden = false; } else { window.alert(message); }
  });
})();
