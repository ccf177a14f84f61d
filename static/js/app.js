/* Campaign manager: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    // Forms (or buttons) that ask before doing something hard to undo: data-confirm="question".
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var question = form.getAttribute && form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    });

    // Filter forms that use GET: leave blank fields out of the address, so it stays short and shareable.
    document.querySelectorAll("form.filters").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("input[name], select[name]").forEach(function (field) {
          if (field.value.trim() === "") field.disabled = true;
        });
        // Re-enable them if the page is shown again from the back/forward cache.
        window.addEventListener("pageshow", function () {
          form.querySelectorAll("[disabled]").forEach(function (field) { field.disabled = false; });
        }, { once: true });
      });
    });

    // A form page with errors: bring the first marked field into view and put the cursor in it.
    var firstError = document.querySelector(".campaign-form .has-error, main form .field.has-error");
    if (firstError) {
      var input = firstError.querySelector("input:not([type=hidden]), select, textarea");
      firstError.scrollIntoView({ block: "center" });
      if (input) input.focus({ preventScroll: true });
    }

    // Copy buttons: data-copy="#element-id" copies that element's text.
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (!source) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = source.textContent.trim();
        var done = function () {
          var label = button.textContent;
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
        } else {
          selectText(source);
        }
      });
    });

    // Live panels: data-refresh-url is fetched every data-refresh-seconds (0: not now) and replaces the
    // panel's content, unless the person is typing in it. The server says in X-Refresh-Seconds whether to go on.
    document.querySelectorAll("[data-refresh-url]").forEach(function (panel) {
      var seconds = parseInt(panel.getAttribute("data-refresh-seconds") || "0", 10);
      function tick() {
        if (panel.contains(document.activeElement) && document.activeElement.matches("input, select, textarea")) {
          setTimeout(tick, seconds * 1000);
          return;
        }
        fetch(panel.getAttribute("data-refresh-url"), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
          .then(function (response) {
            if (!response.ok) throw new Error(response.status);
            seconds = parseInt(response.headers.get("X-Refresh-Seconds") || "0", 10);
            return response.text();
          })
          .then(function (html) {
            panel.innerHTML = html;
            panel.setAttribute("data-refresh-seconds", String(seconds));
            if (seconds > 0) setTimeout(tick, seconds * 1000);
          })
          .catch(function () { setTimeout(tick, 30000); });
      }
      if (seconds > 0) setTimeout(tick, seconds * 1000);
    });

    // The main navigation's drop-down menus close on a click elsewhere and on Escape.
    var menus = document.querySelectorAll("details.navmenu");
    document.addEventListener("click", function (event) {
      menus.forEach(function (menu) { if (menu.open && !menu.contains(event.target)) menu.open = false; });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      menus.forEach(function (menu) {
        if (menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
      });
    });

    // "Go back" buttons on error pages, shown only when there is somewhere to go back to.
    document.querySelectorAll("[data-back]").forEach(function (button) {
      if (window.history.length < 2) return;
      button.hidden = false;
      button.addEventListener("click", function () { window.history.back(); });
    });
  });

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
})();
