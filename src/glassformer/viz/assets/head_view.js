(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("gf-data").textContent);
  // Weights arrive as integers in units of 1/scale; turn them back into fractions once.
  DATA.views.forEach(function (v) {
    v.weights = v.weights.map(function (layer) {
      return layer.map(function (head) {
        return head.map(function (row) { return row.map(function (w) { return w / DATA.scale; }); });
      });
    });
  });
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
  var SVGNS = "http://www.w3.org/2000/svg";
  var ROW = 20, TOP = 28, SPAN = 150, CHAR = 7.4, MAX_CHARS = 24;
  var state = {
    view: DATA.initial.view, layer: DATA.initial.layer, head: DATA.initial.head,
    start: 0, length: DATA.window, threshold: DATA.threshold, scaleLines: DATA.scale_lines
  };

  function el(tag, attrs, parent) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function svgEl(tag, attrs, parent) {
    var node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function view() { return DATA.views[state.view]; }
  function nLayers() { return view().weights.length; }
  function nHeads() { return view().weights[0].length; }
  function headColor(h) { return h < 0 ? "#444" : PALETTE[h % PALETTE.length]; }

  // A head's (T_q, T_k) matrix; head -2 is the mean over heads.
  function matrix(layer, head) {
    var heads = view().weights[layer];
    if (head >= 0) { return heads[head]; }
    var tq = heads[0].length, tk = heads[0][0].length, out = [];
    for (var i = 0; i < tq; i++) {
      var row = new Array(tk).fill(0);
      for (var h = 0; h < heads.length; h++) {
        for (var j = 0; j < tk; j++) { row[j] += heads[h][i][j] / heads.length; }
      }
      out.push(row);
    }
    return out;
  }
  // Heads drawn for the current selection: one head, every head in its colour (-1), or the mean (-2).
  function drawnHeads() {
    if (state.head === -1) { var all = []; for (var h = 0; h < nHeads(); h++) { all.push(h); } return all; }
    return [state.head];
  }
  // The shown token range of one side: the window [start, start + length), slid back to fit a shorter side.
  function windowOf(total) {
    var length = Math.max(1, Math.min(state.length, total));
    var start = Math.max(0, Math.min(state.start, total - length));
    return [start, start + length];
  }
  function label(token) {
    return token.length > MAX_CHARS ? token.slice(0, MAX_CHARS - 1) + "\u2026" : token;
  }

  // ---------------------------------------------------------------- controls
  var root = document.getElementById("gf-root");
  var controls = el("div", {"class": "gf-controls"}, root);
  function select(id, text, options, value, onChange) {
    var wrap = el("label", {}, controls);
    wrap.appendChild(document.createTextNode(text));
    var box = el("select", {id: id}, wrap);
    options.forEach(function (o) {
      var opt = el("option", {value: String(o[0])}, box);
      opt.textContent = o[1];
      if (o[0] === value) { opt.selected = true; }
    });
    box.addEventListener("change", function () { onChange(parseInt(box.value, 10)); });
    return box;
  }
  function number(id, text, value, min, step, onChange) {
    var wrap = el("label", {}, controls);
    wrap.appendChild(document.createTextNode(text));
    var box = el("input", {id: id, type: "number", value: String(value), min: String(min), step: String(step)}, wrap);
    box.addEventListener("change", function () {
      var v = parseFloat(box.value);
      if (!isNaN(v)) { onChange(v); }
    });
    return box;
  }
  var viewBox = null, layerBox = null, headBox = null;
  function buildSelectors() {
    if (viewBox) { viewBox.parentNode.remove(); layerBox.parentNode.remove(); headBox.parentNode.remove(); }
    var views = DATA.views.map(function (v, i) { return [i, v.name]; });
    viewBox = select("gf-view", "Attention", views, state.view, function (v) {
      state.view = v;
      state.layer = Math.min(state.layer, nLayers() - 1);
      if (state.head >= nHeads()) { state.head = -1; }
      buildSelectors();
      redraw();
    });
    if (DATA.views.length < 2) { viewBox.parentNode.style.display = "none"; }
    var layers = [];
    for (var l = 0; l < nLayers(); l++) { layers.push([l, String(l)]); }
    layerBox = select("gf-layer", "Layer", layers, state.layer, function (v) { state.layer = v; redraw(); });
    var heads = [[-1, "all (colours)"], [-2, "mean"]];
    for (var h = 0; h < nHeads(); h++) { heads.push([h, String(h)]); }
    headBox = select("gf-head", "Head", heads, state.head, function (v) { state.head = v; redraw(); });
    controls.insertBefore(headBox.parentNode, controls.firstChild);
    controls.insertBefore(layerBox.parentNode, controls.firstChild);
    controls.insertBefore(viewBox.parentNode, controls.firstChild);
  }
  var startBox = number("gf-start", "From token", state.start, 0, 1, function (v) { state.start = Math.max(0, Math.round(v)); redraw(); });
  var lengthBox = number("gf-length", "Show", state.length, 1, 1, function (v) { state.length = Math.max(1, Math.round(v)); redraw(); });
  var prev = el("button", {id: "gf-prev", type: "button"}, controls);
  prev.textContent = "\u25C0";
  var next = el("button", {id: "gf-next", type: "button"}, controls);
  next.textContent = "\u25B6";
  function longest() { return Math.max(view().query_tokens.length, view().key_tokens.length); }
  prev.addEventListener("click", function () { state.start = Math.max(0, state.start - state.length); redraw(); });
  next.addEventListener("click", function () {
    state.start = Math.max(0, Math.min(state.start + state.length, longest() - state.length)); redraw();
  });
  number("gf-threshold", "Hide lines below", state.threshold, 0, 0.01, function (v) { state.threshold = v; redraw(); });
  var scaleWrap = el("label", {title: "long inputs spread attention thinly; this makes the strongest shown line opaque"}, controls);
  var scaleBox = el("input", {id: "gf-scale-lines", type: "checkbox"}, scaleWrap);
  scaleBox.checked = state.scaleLines;
  scaleWrap.appendChild(document.createTextNode("Scale to strongest"));
  scaleBox.addEventListener("change", function () { state.scaleLines = scaleBox.checked; redraw(); });
  buildSelectors();

  var note = el("div", {"class": "gf-note", id: "gf-note"}, root);
  var legend = el("div", {"class": "gf-legend", id: "gf-legend"}, root);
  var grid = null;
  if (DATA.mode === "model") { grid = el("div", {"class": "gf-grid", id: "gf-grid"}, root); }
  var scroll = el("div", {"class": "gf-scroll"}, root);
  var svg = svgEl("svg", {"class": "gf-head", id: "gf-svg"}, scroll);

  // ---------------------------------------------------------------- head view
  var lines = [], leftTokens = [], rightTokens = [], rightShades = [], current = null;

  function drawHead() {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    lines = []; leftTokens = []; rightTokens = []; rightShades = [];
    var v = view(), q = windowOf(v.query_tokens.length), k = windowOf(v.key_tokens.length);
    state.start = Math.min(state.start, Math.max(q[0], k[0]));
    startBox.value = String(state.start);
    lengthBox.value = String(state.length);
    var chars = 8;  // room for the "query →" heading
    v.query_tokens.concat(v.key_tokens).forEach(function (t) { chars = Math.max(chars, Math.min(MAX_CHARS, t.length)); });
    var labelW = chars * CHAR + 10, x0 = labelW + 6, x1 = x0 + SPAN;
    var rows = Math.max(q[1] - q[0], k[1] - k[0]);
    svg.setAttribute("width", String(x1 + labelW + 12));
    svg.setAttribute("height", String(TOP + rows * ROW + 8));
    var head1 = svgEl("text", {x: String(x0 - 6), y: "14", "text-anchor": "end", "class": "gf-token"}, svg);
    head1.textContent = "query \u2192";
    var head2 = svgEl("text", {x: String(x1 + 6), y: "14", "class": "gf-token"}, svg);
    head2.textContent = "\u2192 key";
    function y(row) { return TOP + row * ROW + ROW / 2; }

    var lineGroup = svgEl("g", {id: "gf-lines"}, svg);
    // Opacity is the weight itself, or the weight over the strongest shown one when scaling is on.
    var gain = 1;
    if (state.scaleLines) {
      var peak = 0;
      drawnHeads().forEach(function (h) {
        var m = matrix(state.layer, h);
        for (var i = q[0]; i < q[1]; i++) { for (var j = k[0]; j < k[1]; j++) { peak = Math.max(peak, m[i][j]); } }
      });
      gain = peak > 0 ? 1 / peak : 1;
    }
    drawnHeads().forEach(function (h) {
      var m = matrix(state.layer, h);
      for (var i = q[0]; i < q[1]; i++) {
        for (var j = k[0]; j < k[1]; j++) {
          var w = m[i][j];
          if (w < state.threshold || w <= 0) { continue; }
          var line = svgEl("line", {
            "class": "gf-line", x1: String(x0), y1: String(y(i - q[0])), x2: String(x1), y2: String(y(j - k[0])),
            stroke: headColor(h), "stroke-width": "2", "stroke-opacity": String(Math.min(1, w * gain)),
            "data-q": String(i), "data-k": String(j), "data-head": String(h), "data-w": String(w)
          }, lineGroup);
          lines.push(line);
        }
      }
    });
    for (var i = q[0]; i < q[1]; i++) {
      var t = svgEl("text", {"class": "gf-token gf-left", x: String(x0 - 6), y: String(y(i - q[0]) + 4),
                             "text-anchor": "end", "data-i": String(i)}, svg);
      t.textContent = label(v.query_tokens[i]);
      svgEl("title", {}, t).textContent = i + ": " + v.query_tokens[i];
      hover(t, "q", i);
      leftTokens.push(t);
    }
    for (var j = k[0]; j < k[1]; j++) {
      var shade = svgEl("rect", {"class": "gf-shade", x: String(x1 + 2), y: String(y(j - k[0]) - ROW / 2 + 2),
                                 width: String(labelW), height: String(ROW - 4), fill: "#9ecae1",
                                 "fill-opacity": "0", "data-k": String(j)}, svg);
      rightShades.push(shade);
      var r = svgEl("text", {"class": "gf-token gf-right", x: String(x1 + 6), y: String(y(j - k[0]) + 4),
                             "data-k": String(j)}, svg);
      r.textContent = label(v.key_tokens[j]);
      svgEl("title", {}, r).textContent = j + ": " + v.key_tokens[j];
      hover(r, "k", j);
      rightTokens.push(r);
    }
    svg.setAttribute("data-lines", String(lines.length));
    var shownQ = (q[0]) + "\u2013" + (q[1] - 1) + " of " + v.query_tokens.length;
    var shownK = (k[0]) + "\u2013" + (k[1] - 1) + " of " + v.key_tokens.length;
    note.textContent = v.name + ", layer " + state.layer + ", " +
      (state.head === -1 ? "all heads" : state.head === -2 ? "mean over heads" : "head " + state.head) +
      ": queries " + shownQ + ", keys " + shownK + "; " + lines.length + " lines at weight \u2265 " +
      state.threshold + ". Hover a token to focus it.";
    legend.textContent = "";
    if (state.head === -1) {
      drawnHeads().forEach(function (h) {
        var s = el("span", {}, legend);
        el("i", {style: "background:" + headColor(h)}, s);
        s.appendChild(document.createTextNode("head " + h));
      });
    }
  }

  // Focus one token: only its lines stay visible; the other side is shaded by its weight.
  function focus(side, index) {
    current = side === null ? null : [side, index];
    lines.forEach(function (line) {
      var keep = side === null || line.getAttribute(side === "q" ? "data-q" : "data-k") === String(index);
      line.classList.toggle("gf-hidden", !keep);
    });
    leftTokens.forEach(function (t) { t.classList.toggle("gf-focus", side === "q" && t.getAttribute("data-i") === String(index)); });
    rightTokens.forEach(function (t) { t.classList.toggle("gf-focus", side === "k" && t.getAttribute("data-k") === String(index)); });
    rightShades.forEach(function (s) { s.setAttribute("fill-opacity", "0"); });
    if (side === "q") {
      var heads = drawnHeads(), v = view();
      rightShades.forEach(function (s) {
        var j = parseInt(s.getAttribute("data-k"), 10), w = 0;
        heads.forEach(function (h) { w += matrix(state.layer, h)[index][j] / heads.length; });
        s.setAttribute("fill-opacity", String(Math.min(1, w)));
      });
    }
  }
  function hover(node, side, index) {
    node.addEventListener("mouseenter", function () { focus(side, index); });
    node.addEventListener("mouseleave", function () { focus(null, 0); });
  }

  // ---------------------------------------------------------------- model view (layers x heads thumbnails)
  var thumbs = [];
  function drawGrid() {
    if (!grid) { return; }
    grid.textContent = "";
    thumbs = [];
    var v = view(), q = windowOf(v.query_tokens.length), k = windowOf(v.key_tokens.length);
    var W = 84, H = 84;
    grid.style.gridTemplateColumns = "auto repeat(" + nHeads() + ", " + (W + 4) + "px)";
    el("div", {"class": "gf-axis"}, grid).textContent = "layer \\ head";
    for (var h = 0; h < nHeads(); h++) { el("div", {"class": "gf-axis"}, grid).textContent = String(h); }
    for (var l = 0; l < nLayers(); l++) {
      el("div", {"class": "gf-axis"}, grid).textContent = String(l);
      for (var hh = 0; hh < nHeads(); hh++) {
        var c = el("canvas", {width: String(W), height: String(H), "data-layer": String(l), "data-head": String(hh),
                              title: "layer " + l + ", head " + hh}, grid);
        var ctx = c.getContext("2d"), m = v.weights[l][hh], count = 0, gain = 1;
        var nq = q[1] - q[0], nk = k[1] - k[0];
        if (state.scaleLines) {
          var peak = 0;
          for (var pi = q[0]; pi < q[1]; pi++) { for (var pj = k[0]; pj < k[1]; pj++) { peak = Math.max(peak, m[pi][pj]); } }
          gain = peak > 0 ? 1 / peak : 1;
        }
        ctx.strokeStyle = headColor(hh);
        ctx.lineWidth = 1;
        for (var i = q[0]; i < q[1]; i++) {
          for (var j = k[0]; j < k[1]; j++) {
            var w = m[i][j];
            if (w < state.threshold || w <= 0) { continue; }
            ctx.globalAlpha = Math.min(1, w * gain);
            ctx.beginPath();
            ctx.moveTo(10, 4 + (i - q[0] + 0.5) * (H - 8) / nq);
            ctx.lineTo(W - 10, 4 + (j - k[0] + 0.5) * (H - 8) / nk);
            ctx.stroke();
            count++;
          }
        }
        c.setAttribute("data-lines", String(count));
        (function (layer, head) {
          c.addEventListener("click", function () {
            state.layer = layer; state.head = head;
            layerBox.value = String(layer); headBox.value = String(head);
            redraw();
          });
        })(l, hh);
        thumbs.push(c);
      }
    }
  }
  function markSelected() {
    thumbs.forEach(function (c) {
      c.classList.toggle("gf-selected", c.getAttribute("data-layer") === String(state.layer) &&
                                         c.getAttribute("data-head") === String(state.head));
    });
  }

  var gridKey = null;
  function redraw() {
    drawHead();
    var key = [state.view, state.start, state.length, state.threshold, state.scaleLines].join("/");
    if (key !== gridKey) { drawGrid(); gridKey = key; }
    markSelected();
    document.body.setAttribute("data-ready", "1");
  }
  redraw();
})();
