/* The selection builder: turns the form into a recipe, asks the API for the count as the user edits
   (debounced), and freezes the selection into a DataID set. No library; served from our static files. */
(function () {
  "use strict";

  var form = document.getElementById("selection-form");
  if (!form) return;
  var choices = JSON.parse(document.getElementById("selection-choices").textContent);
  var initial = JSON.parse(document.getElementById("selection-initial").textContent);
  var termsBox = document.getElementById("sel-terms");
  var countEl = document.getElementById("sel-count");
  var statusEl = document.getElementById("sel-status");
  var errorsEl = document.getElementById("sel-errors");
  var termTable = document.getElementById("sel-term-counts");
  var preview = document.getElementById("sel-preview");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var timer = null;
  var sequence = 0;
  var KIND_LABELS = {}, KIND_MODES = {};
  (choices.term_kinds || []).forEach(function (k) { KIND_LABELS[k.name] = k.label; KIND_MODES[k.name] = k.default_mode; });
  var listCount = 0;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function select(name, options, value, label) {
    var s = el("select", { "data-name": name, "aria-label": label });
    options.forEach(function (o) {
      var opt = el("option", { value: o[0], text: o[1] });
      if (String(o[0]) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }

  function checks(name, values, chosen) {
    var box = el("span", { "data-name": name, class: "chips" });
    values.forEach(function (v) {
      var input = el("input", { type: "checkbox", value: v });
      if (chosen.indexOf(v) >= 0) input.checked = true;
      box.appendChild(el("label", { class: "chip" }, [input, document.createTextNode(" " + v)]));
    });
    return box;
  }

  function repo() { return document.getElementById("sel-repo").value; }

  function addTerm(kind, term) {
    term = term || {};
    var row = el("div", { class: "row sel-term", "data-kind": kind });
    row.appendChild(el("span", { class: "badge", text: KIND_LABELS[kind] }));
    row.appendChild(select("mode", [["include", "include"], ["exclude", "exclude"]], term.mode || KIND_MODES[kind] || "include", "Include or exclude"));
    if (kind === "where") {
      row.appendChild(el("input", { type: "text", "data-name": "where", size: "60", "aria-label": "Butler where expression", placeholder: "band = 'r' AND exposure.day_obs >= 20251121", value: term.where || "" }));
    } else if (kind === "dataid_set") {
      var sets = choices.sets.filter(function (s) { return s.repo === repo(); });
      row.appendChild(select("dataid_set", sets.map(function (s) { return [s.name, s.name + " (v" + s.versions.join(", v") + ")"]; }), term.dataid_set, "DataID set"));
      row.appendChild(el("input", { type: "number", min: "1", "data-name": "version", placeholder: "latest", "aria-label": "Version", value: term.version || "" }));
    } else if (kind === "tag_table") {
      var tables = choices.tag_tables.filter(function (t) { return t.repo === repo(); });
      var tableSelect = select("tag_table", tables.map(function (t) { return [t.name, t.name + " (" + t.polarity + ")"]; }), term.tag_table, "Tag table");
      var cols = el("span", { class: "small muted", "data-columns": "" });
      var showColumns = function () {
        var t = tables.filter(function (x) { return x.name === tableSelect.value; })[0];
        cols.textContent = t ? "columns: " + t.columns.map(function (c) { return c.name + " (" + c.type + (c.retired ? ", retired" : "") + ")"; }).join(", ") : "";
      };
      tableSelect.addEventListener("change", showColumns);
      row.appendChild(tableSelect);
      row.appendChild(el("input", { type: "text", "data-name": "condition", size: "50", "aria-label": "Condition on its columns", placeholder: "seeing < 1.0 AND NOT dome_open", value: term.condition || "" }));
      row.appendChild(cols);
      showColumns();
    } else if (kind === "flags") {
      row.appendChild(checks("flags", choices.flags, term.flags || ["junk"]));
    } else if (kind === "bad_data") {
      row.appendChild(checks("bad_data", choices.bad_data, term.bad_data || ["open", "explained"]));
    } else if (kind === "metric") {
      metricFields(row, term);
    }
    var remove = el("button", { type: "button", class: "btn subtle", "aria-label": "Remove this term", text: "Remove" });
    remove.addEventListener("click", function () { row.remove(); schedule(); });
    row.appendChild(remove);
    termsBox.appendChild(row);
    schedule();
  }

  // A metric term: where the values come from (a campaign you may view, or an outside source of the repo),
  // the metric (suggested from that source), per what, which statistic over detectors, and the threshold.
  function metricFields(row, term) {
    var offered = (choices.kind_choices || {}).metric || { campaigns: [], sources: [], per: [], statistics: [], ops: [] };
    var sources = offered.campaigns.filter(function (c) { return c.repo === repo(); }).map(function (c) {
      return ["campaign:" + c.name, "campaign " + c.name, c.metrics];
    }).concat(offered.sources.filter(function (s) { return s.repo === repo(); }).map(function (s) {
      return ["source:" + s.name, "outside source " + s.name, s.metrics];
    }));
    var chosen = term.campaign ? "campaign:" + term.campaign : term.source ? "source:" + term.source : "";
    if (chosen && !sources.some(function (s) { return s[0] === chosen; })) sources.unshift([chosen, chosen.replace(":", " "), []]);
    var sourceSelect = select("source", sources.map(function (s) { return [s[0], s[1]]; }), chosen, "Where the values come from");
    var listId = "sel-metric-names-" + (++listCount);
    var names = el("datalist", { id: listId });
    var metricInput = el("input", { type: "text", "data-name": "metric", size: "28", list: listId, "aria-label": "Metric", placeholder: "metric, e.g. psf_fwhm", value: term.metric || "" });
    var showNames = function () {
      var found = sources.filter(function (s) { return s[0] === sourceSelect.value; })[0];
      names.innerHTML = "";
      ((found && found[2]) || []).forEach(function (m) { names.appendChild(el("option", { value: m })); });
      if (!metricInput.value && found && found[2].length) metricInput.value = found[2][0];
    };
    sourceSelect.addEventListener("change", function () { metricInput.value = ""; showNames(); });
    row.appendChild(sourceSelect);
    row.appendChild(metricInput);
    row.appendChild(names);
    row.appendChild(select("per", offered.per.map(function (p) { return [p, "per " + p]; }), term.per || "exposure", "Per exposure, visit or detector"));
    row.appendChild(select("statistic", offered.statistics.map(function (x) { return [x, x + " over detectors"]; }), term.statistic || "median", "Statistic over detectors"));
    row.appendChild(select("op", offered.ops.map(function (o) { return [o, o]; }), term.op || "<", "Comparison"));
    row.appendChild(el("input", { type: "number", step: "any", "data-name": "threshold", "aria-label": "Threshold", placeholder: "threshold", value: term.threshold === undefined ? "" : term.threshold }));
    showNames();
    if (!sources.length) row.appendChild(el("span", { class: "small muted", text: "no metric values in this repo that you may see" }));
  }

  function recipe() {
    var r = { repo: repo(), dimensions: document.getElementById("sel-dimensions").value.split(","), terms: [] };
    termsBox.querySelectorAll(".sel-term").forEach(function (row) {
      var kind = row.getAttribute("data-kind");
      var term = { mode: row.querySelector("[data-name=mode]").value };
      if (kind === "flags" || kind === "bad_data") {
        term[kind] = Array.prototype.map.call(row.querySelectorAll("[data-name=" + kind + "] input:checked"), function (i) { return i.value; });
      } else if (kind === "metric") {
        var source = (row.querySelector("[data-name=source]").value || ":").split(":");
        if (source[0]) term[source[0]] = source.slice(1).join(":");
        term.metric = row.querySelector("[data-name=metric]").value;
        ["per", "statistic", "op"].forEach(function (k) { term[k] = row.querySelector("[data-name=" + k + "]").value; });
        var threshold = row.querySelector("[data-name=threshold]").value;
        term.threshold = threshold === "" ? null : parseFloat(threshold);
      } else {
        term[kind] = row.querySelector("[data-name=" + kind + "]").value;
      }
      if (kind === "dataid_set") {
        var v = row.querySelector("[data-name=version]").value;
        if (v) term.version = parseInt(v, 10);
      }
      if (kind === "tag_table") term.condition = row.querySelector("[data-name=condition]").value;
      r.terms.push(term);
    });
    var sampleKind = document.getElementById("sel-sample-kind").value;
    if (sampleKind) {
      var amount = parseFloat(document.getElementById("sel-sample-amount").value);
      var sample = {};
      sample[sampleKind] = sampleKind === "size" ? Math.round(amount) : amount;
      var seedInput = document.getElementById("sel-sample-seed");
      // No seed given: choose one now and show it, so the live preview and the frozen set agree.
      if (seedInput.value === "") seedInput.value = String(Math.floor(Math.random() * 2147483647));
      sample.seed = parseInt(seedInput.value, 10);
      var stratify = document.getElementById("sel-stratify").value;
      if (stratify) {
        sample.stratify = { field: stratify.split(":")[1] };
        var bins = document.getElementById("sel-bins").value;
        if (bins) sample.stratify.bins = parseInt(bins, 10);
      }
      r.sample = sample;
    }
    return r;
  }

  function showErrors(payload) {
    var lines = [];
    if (payload.errors && payload.errors.length) payload.errors.forEach(function (e) { lines.push(e.message); });
    else if (payload.detail) lines.push(payload.detail);
    else Object.keys(payload).forEach(function (k) { lines.push(k + ": " + [].concat(payload[k]).join(" ")); });
    errorsEl.innerHTML = "";
    lines.forEach(function (l) { errorsEl.appendChild(el("p", { text: l })); });
    errorsEl.hidden = lines.length === 0;
  }

  function showResult(data) {
    countEl.textContent = data.count.toLocaleString("en");
    statusEl.textContent = "of " + (data.start || 0).toLocaleString("en") + " (" + Math.round(data.seconds * 1000) + " ms)" + (data.sample ? " · " + data.sample : "");
    var body = termTable.querySelector("tbody");
    body.innerHTML = "";
    data.terms.forEach(function (t) {
      body.appendChild(el("tr", {}, [el("td", { text: String(t.index + 1) }), el("td", { text: t.label + (t.engine === "butler" ? " (answered by the Butler)" : "") }), el("td", { class: "num", text: t.after.toLocaleString("en") })]));
    });
    termTable.hidden = data.terms.length === 0;
    var head = preview.querySelector("thead");
    var rows = preview.querySelector("tbody");
    head.innerHTML = "";
    rows.innerHTML = "";
    if (data.preview.length) {
      var keys = Object.keys(data.preview[0]);
      head.appendChild(el("tr", {}, keys.map(function (k) { return el("th", { text: k }); })));
      data.preview.forEach(function (p) {
        rows.appendChild(el("tr", {}, keys.map(function (k) { return el("td", { text: p[k] === null ? "" : String(p[k]) }); })));
      });
    }
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return { detail: "HTTP " + response.status }; }).then(function (payload) {
        return { ok: response.ok, status: response.status, payload: payload };
      });
    });
  }

  function count() {
    var mine = ++sequence;
    statusEl.textContent = "counting…";
    post(form.getAttribute("data-count-url"), { recipe: recipe() }).then(function (r) {
      if (mine !== sequence) return; // a newer edit is already being counted
      if (r.ok) { showErrors({ errors: [] }); errorsEl.hidden = true; showResult(r.payload); }
      else { countEl.textContent = "—"; statusEl.textContent = ""; showErrors(r.payload); }
    }).catch(function (e) { statusEl.textContent = "could not count: " + e; });
  }

  function schedule() {
    if (timer) window.clearTimeout(timer);
    timer = window.setTimeout(count, 350);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  document.querySelectorAll("[data-add]").forEach(function (b) {
    b.addEventListener("click", function () { addTerm(b.getAttribute("data-add")); });
  });

  var freeze = document.getElementById("sel-freeze-button");
  if (freeze) {
    freeze.addEventListener("click", function () {
      freeze.disabled = true;
      post(form.getAttribute("data-freeze-url"), {
        recipe: recipe(),
        name: document.getElementById("sel-name").value,
        reason: document.getElementById("sel-reason").value,
        visibility: document.getElementById("sel-visibility").value,
      }).then(function (r) {
        freeze.disabled = false;
        if (r.ok) window.location.href = r.payload.url;
        else showErrors(r.payload);
      });
    });
  }

  if (initial) {
    document.getElementById("sel-repo").value = initial.repo;
    document.getElementById("sel-dimensions").value = initial.dimensions.join(",");
    initial.terms.forEach(function (t) { addTerm(t.kind, t); });
    if (initial.sample) {
      var kind = initial.sample.size ? "size" : "fraction";
      document.getElementById("sel-sample-kind").value = kind;
      document.getElementById("sel-sample-amount").value = initial.sample[kind];
      document.getElementById("sel-sample-seed").value = initial.sample.seed;
      if (initial.sample.stratify && initial.sample.stratify.field) {
        document.getElementById("sel-stratify").value = "field:" + initial.sample.stratify.field;
        if (initial.sample.stratify.bins) document.getElementById("sel-bins").value = initial.sample.stratify.bins;
      }
    }
  }
  schedule();
})();
