// client-registry admin screens: progressive enhancement only; every page works without it.
(function () {
  "use strict";

  // "Copy" buttons: data-copy names the input whose value is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    if (!input) return;
    input.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });

  // The delete confirmation, loaded by htmx into <dialog id="dialog">, opens as a modal.
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = document.getElementById("dialog");
    if (event.detail.target === dialog && !dialog.open) {
      dialog.showModal();
      var first = dialog.querySelector("input:not([type=hidden])");
      if (first) first.focus();
    }
  });
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-close-dialog]");
    var dialog = document.getElementById("dialog");
    if (close && dialog && dialog.open) {
      event.preventDefault();
      dialog.close();
    }
  });

  // Right-click on a client row opens its menu (the guide's context menu).
  document.addEventListener("contextmenu", function (event) {
    var row = event.target.closest("tr[data-client]");
    if (!row || event.target.closest("a, input, button")) return;
    var menu = row.querySelector("details.menu");
    if (!menu) return;
    event.preventDefault();
    document.querySelectorAll("details.menu[open]").forEach(function (d) { if (d !== menu) d.open = false; });
    menu.open = true;
    var first = menu.querySelector("a");
    if (first) first.focus();
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (d) {
      if (!d.contains(event.target)) d.open = false;
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      document.querySelectorAll("details.menu[open]").forEach(function (d) {
        d.open = false;
        var summary = d.querySelector("summary");
        if (summary) summary.focus();
      });
    }
  });
})();
