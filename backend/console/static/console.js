/* Tierflow console: zoom and pan for the lineage tree. The page works without it (the
   picture then scrolls at its natural size). No inline script: loaded from this file. */
(function () {
  "use strict";
  function setUp(figure) {
    var canvas = figure.querySelector(".canvas");
    var svg = canvas && canvas.querySelector("svg.tree");
    var bar = figure.querySelector(".zoom");
    if (!svg || !bar) return;
    var w = Number(svg.getAttribute("data-width"));
    var h = Number(svg.getAttribute("data-height"));
    var scale = 1;
    function apply(next, cx, cy) {
      next = Math.min(2.5, Math.max(0.1, next));
      var ax = (canvas.scrollLeft + (cx === undefined ? canvas.clientWidth / 2 : cx)) / scale;
      var ay = (canvas.scrollTop + (cy === undefined ? canvas.clientHeight / 2 : cy)) / scale;
      scale = next;
      svg.setAttribute("width", String(Math.round(w * scale)));
      svg.setAttribute("height", String(Math.round(h * scale)));
      canvas.scrollLeft = ax * scale - (cx === undefined ? canvas.clientWidth / 2 : cx);
      canvas.scrollTop = ay * scale - (cy === undefined ? canvas.clientHeight / 2 : cy);
    }
    bar.hidden = false;
    bar.addEventListener("click", function (ev) {
      var what = ev.target && ev.target.getAttribute("data-zoom");
      if (what === "in") apply(scale * 1.25);
      else if (what === "out") apply(scale / 1.25);
      else if (what === "reset") apply(1);
      else if (what === "fit") apply(Math.min(1, (canvas.clientWidth - 12) / w, (canvas.clientHeight - 12) / h));
    });
    canvas.addEventListener("wheel", function (ev) {
      if (!ev.ctrlKey && !ev.metaKey) return;  /* plain wheel scrolls as usual */
      ev.preventDefault();
      var r = canvas.getBoundingClientRect();
      apply(scale * (ev.deltaY < 0 ? 1.1 : 1 / 1.1), ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    var drag = null;
    canvas.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0 || (ev.target.closest && ev.target.closest("a"))) return;
      drag = { x: ev.clientX, y: ev.clientY, left: canvas.scrollLeft, top: canvas.scrollTop };
      canvas.classList.add("dragging");
      canvas.setPointerCapture(ev.pointerId);
    });
    canvas.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      canvas.scrollLeft = drag.left - (ev.clientX - drag.x);
      canvas.scrollTop = drag.top - (ev.clientY - drag.y);
    });
    function end() { drag = null; canvas.classList.remove("dragging"); }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("keydown", function (ev) {
      if (ev.key === "+" || ev.key === "=") apply(scale * 1.25);
      else if (ev.key === "-") apply(scale / 1.25);
      else if (ev.key === "0") apply(1);
    });
    /* a picture a little wider than the frame is shown whole, still legible */
    var fitWidth = (canvas.clientWidth - 12) / w;
    if (fitWidth < 1 && fitWidth >= 0.7) apply(fitWidth, 0, 0);
    var focus = svg.querySelector(".node.focus");
    if (focus && focus.getBBox) {
      var box = focus.getBBox();
      var m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(focus.getAttribute("transform") || "");
      if (m) canvas.scrollTop = Math.max(0, (Number(m[2]) + box.height / 2) * scale - canvas.clientHeight / 2);
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var figures = document.querySelectorAll("figure.tree-figure");
    for (var i = 0; i < figures.length; i++) setUp(figures[i]);
  });
})();
