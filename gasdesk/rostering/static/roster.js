// The roster grid: changing a cell posts it (htmx) and the board comes back with the rules the roster now breaks.
(function () {
  "use strict";
  document.addEventListener("change", function (ev) {
    const cell = ev.target.closest("select[data-cell]");
    if (!cell || !window.htmx) return;
    const grid = cell.closest("#roster-grid");
    window.htmx.ajax("POST", grid.dataset.url, {
      target: "#roster-board", swap: "innerHTML",
      values: { user_id: cell.dataset.user, day: cell.dataset.day, shift_id: cell.value },
    });
  });
})();
