/* Tag tables: the editable grid. Cells are saved one at a time through the REST API (fetch + the page's
   CSRF token); a refused value stays on the cell with the server's message. No library needed. */
(function () {
  "use strict";

  var grid = document.getElementById("tag-grid");
  if (!grid || !grid.dataset.editable) return;
  var api = grid.dataset.api;
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var statusBox = document.getElementById("grid-status");

  function reason() {
    var input = document.getElementById("edit-reason");
    return input ? input.value.trim() : "";
  }

  function say(text, kind) {
    statusBox.textContent = text;
    statusBox.className = "grid-status" + (kind ? " " + kind : "");
  }

  function send(method, body) {
    return fetch(api, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function problemFor(data, key) {
    var errors = (data && data.errors) || [];
    for (var i = 0; i < errors.length; i++) if (errors[i].key === key) return errors[i].message;
    if (errors.length) return errors[0].message;
    return (data && data.detail) || "The server refused this change.";
  }

  function display(value) {
    if (value === null || value === undefined) return "";
    return String(value);
  }

  function editorFor(cell) {
    var type = cell.dataset.type, value = cell.dataset.value, editor;
    if (type === "enum" || type === "bool") {
      editor = document.createElement("select");
      var options = type === "bool" ? ["true", "false"] : (cell.dataset["enum"] || "").split("|");
      [""].concat(options).forEach(function (v) {
        var option = document.createElement("option");
        option.value = v; option.textContent = v;
        if (v === value) option.selected = true;
        editor.appendChild(option);
      });
    } else {
      editor = document.createElement("input");
      editor.type = "text";
      editor.value = value;
    }
    editor.className = "cell-editor";
    editor.setAttribute("aria-label", cell.dataset.column);
    return editor;
  }

  function clearError(cell) {
    cell.classList.remove("cell-error");
    var msg = cell.querySelector(".cell-msg");
    if (msg) msg.remove();
  }

  function showError(cell, text, shown) {
    cell.textContent = shown;
    cell.classList.add("cell-error");
    var msg = document.createElement("div");
    msg.className = "cell-msg";
    msg.textContent = text;
    cell.appendChild(msg);
  }

  function save(cell, editor) {
    var value = editor.value;
    if (value === cell.dataset.value && !cell.classList.contains("cell-error")) {
      cell.textContent = display(cell.dataset.value);
      return;
    }
    var row = cell.closest("tr");
    var item = JSON.parse(row.dataset.dataid);
    item[cell.dataset.column] = value === "" ? null : value;
    cell.classList.add("saving");
    send("POST", { rows: [item], reason: reason() }).then(function (answer) {
      cell.classList.remove("saving");
      clearError(cell);
      if (!answer.ok) {
        showError(cell, problemFor(answer.data, cell.dataset.column), value);
        say("Not saved: " + cell.dataset.column + " — " + problemFor(answer.data, cell.dataset.column), "error");
        return;
      }
      var stored = (answer.data.rows || [])[0];
      var newValue = stored ? stored.values[cell.dataset.column] : value;
      cell.dataset.value = display(newValue);
      cell.textContent = display(newValue);
      cell.classList.add("saved");
      setTimeout(function () { cell.classList.remove("saved"); }, 1500);
      say("Saved " + cell.dataset.column + " of " + row.dataset.key + ".", "ok");
    }, function () {
      cell.classList.remove("saving");
      showError(cell, "The server could not be reached.", value);
    });
  }

  function edit(cell) {
    if (cell.querySelector(".cell-editor")) return;
    var editor = editorFor(cell);
    var done = false;
    clearError(cell);
    cell.textContent = "";
    cell.appendChild(editor);
    editor.focus();
    function finish(keep) {
      if (done) return;
      done = true;
      if (keep) save(cell, editor);
      else cell.textContent = display(cell.dataset.value);
    }
    editor.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); finish(true); }
      else if (event.key === "Escape") { event.preventDefault(); finish(false); }
    });
    editor.addEventListener("blur", function () { finish(true); });
    if (editor.tagName === "SELECT") editor.addEventListener("change", function () { finish(true); });
  }

  grid.addEventListener("click", function (event) {
    var cell = event.target.closest("td.editable");
    if (cell && !event.target.closest(".cell-editor")) edit(cell);
  });
  grid.addEventListener("keydown", function (event) {
    var cell = event.target;
    if (cell.matches && cell.matches("td.editable") && (event.key === "Enter" || event.key === "F2")) {
      event.preventDefault();
      edit(cell);
    }
  });

  // Delete a row: a reason is required.
  grid.addEventListener("click", function (event) {
    var button = event.target.closest(".delete-row");
    if (!button) return;
    var row = button.closest("tr");
    var why = window.prompt("Why delete " + row.dataset.key + "? (kept in its history)", reason());
    if (why === null) return;
    send("DELETE", { keys: [row.dataset.key], reason: why }).then(function (answer) {
      if (!answer.ok) { say("Not deleted: " + problemFor(answer.data, "reason"), "error"); return; }
      row.remove();
      say("Deleted " + row.dataset.key + ".", "ok");
    });
  });

  // A row that is already there: say so with its stored values, and let the person choose to update it.
  function showExisting(answer, item, box) {
    var rows = answer.data.existing || [];
    var first = rows[0] || { key: "", values: {} };
    box.textContent = "";
    var text = document.createElement("span");
    var values = Object.keys(first.values || {}).filter(function (k) { return first.values[k] !== null; })
      .map(function (k) { return k + " = " + first.values[k]; }).join(", ");
    text.textContent = first.key + " already has a row" + (values ? ": " + values : " (no values)") +
      (first.updated_by ? " (last changed by " + first.updated_by + ")" : "") + ". Nothing was stored. ";
    box.appendChild(text);
    var update = document.createElement("button");
    update.type = "button";
    update.className = "btn";
    update.id = "update-existing-row";
    update.textContent = "Update it with these values";
    update.addEventListener("click", function () {
      send("POST", { rows: [item], reason: reason(), on_existing: "update" }).then(function (again) {
        if (again.ok) { window.location.reload(); return; }
        box.textContent = problemFor(again.data, "");
      });
    });
    box.appendChild(update);
  }

  // Add a row: an exposure that is not a number is sent as an obs_id. A data ID that already has a row is
  // refused (409 with the stored row) unless the person chooses to update it.
  var add = document.getElementById("add-row");
  if (add) {
    add.addEventListener("click", function () {
      var item = {}, box = document.getElementById("new-row-error");
      var inputs = document.querySelectorAll("#new-row [data-dim], #new-row [data-column]");
      inputs.forEach(function (el) { el.classList.remove("input-error"); });
      document.querySelectorAll("#new-row [data-dim]").forEach(function (el) {
        var v = el.value.trim();
        if (!v) return;
        if (el.dataset.dim === "exposure" && !/^\d+$/.test(v)) item.obs_id = v;
        else item[el.dataset.dim] = v;
      });
      document.querySelectorAll("#new-row [data-column]").forEach(function (el) {
        if (el.value.trim() !== "") item[el.dataset.column] = el.value.trim();
      });
      send("POST", { rows: [item], reason: reason(), on_existing: "refuse" }).then(function (answer) {
        if (answer.status === 409 && answer.data.code === "row_exists") {
          document.getElementById("new-row-error-line").hidden = false;
          showExisting(answer, item, box);
          return;
        }
        if (!answer.ok) {
          var errors = (answer.data && answer.data.errors) || [];
          document.getElementById("new-row-error-line").hidden = false;
          box.textContent = errors.length
            ? errors.map(function (e) { return (e.key ? e.key + ": " : "") + e.message; }).join("; ")
            : (answer.data.detail || "The row was refused.");
          errors.forEach(function (e) {
            var el = document.querySelector('#new-row [data-column="' + e.key + '"], #new-row [data-dim="' + e.key + '"]');
            if (!el && e.key === "obs_id") el = document.querySelector('#new-row [data-dim="exposure"]');
            if (el) el.classList.add("input-error");
          });
          return;
        }
        window.location.reload();
      });
    });
  }
})();
