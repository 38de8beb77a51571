// Draws a camera's masks over its picture on the settings page and keeps the form's text field in step: one
// mask per line, "x,y,w,h" for a rectangle, "x1 y1, x2 y2, ..." for a polygon, each number a fraction (0 to
// 1) of the picture's width or height from its top left corner (src/vigint/web/masktext.py reads the same
// lines). Pointer events, so a finger on a phone draws as a mouse does. Without this script the field is
// typed by hand.
(() => {
  "use strict";
  const editor = document.getElementById("editor");
  const field = document.getElementById("masks");
  const tools = document.getElementById("tools");
  const help = document.getElementById("drawing-help");
  if (!editor || !field || !tools || !window.PointerEvent) return;

  const SVG = "http://www.w3.org/2000/svg";
  const TAP = 0.01; // a pointer that moves less than this (a fraction of the picture) taps; further, it drags
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 1 1");
  svg.setAttribute("preserveAspectRatio", "none");
  editor.appendChild(svg);

  let masks = []; // each an array of corners [x, y]
  let mode = "rectangle";
  let selected = -1;
  let drag = null; // the pointer pressed now: where it started, where it is, what it pressed on
  let corners = []; // the polygon being drawn

  const clamp = (value) => Math.round(Math.min(1, Math.max(0, value)) * 10000) / 10000;
  const isRectangle = (points) => points.length === 4 && points[0][1] === points[1][1] &&
    points[1][0] === points[2][0] && points[2][1] === points[3][1] && points[3][0] === points[0][0] &&
    points[1][0] > points[0][0] && points[2][1] > points[1][1];

  function parse(text) {
    const found = [];
    for (const line of text.split("\n")) {
      const parts = line.split(",").map((part) => part.trim().split(/\s+/).filter(Boolean).map(Number));
      if (!line.trim() || parts.some((numbers) => numbers.some((n) => !Number.isFinite(n)))) continue;
      if (parts.length === 4 && parts.every((numbers) => numbers.length === 1)) {
        const [x, y, w, h] = parts.map((numbers) => numbers[0]);
        found.push([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]);
      } else if (parts.length >= 3 && parts.every((numbers) => numbers.length === 2)) {
        found.push(parts);
      }
    }
    return found;
  }

  function line(points) {
    if (isRectangle(points)) {
      const [x, y] = points[0];
      return [x, y, clamp(points[1][0] - x), clamp(points[2][1] - y)].join(",");
    }
    return points.map(([x, y]) => `${x} ${y}`).join(", ");
  }

  function write() {
    field.value = masks.map(line).join("\n");
  }

  function shape(tag, points, attributes) {
    const element = document.createElementNS(SVG, tag);
    element.setAttribute("points", points.map(([x, y]) => `${x},${y}`).join(" "));
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
    svg.appendChild(element);
  }

  function draw() {
    svg.replaceChildren();
    masks.forEach((points, index) => {
      shape("polygon", points, {"data-index": index, class: index === selected ? "selected" : ""});
    });
    if (drag && mode === "rectangle" && drag.moved) {
      shape("polygon", box(drag.start, drag.now), {class: "selected"});
    }
    if (corners.length) shape("polyline", drag && mode === "polygon" ? [...corners, drag.now] : corners, {});
  }

  function box([x0, y0], [x1, y1]) {
    const left = Math.min(x0, x1);
    const right = Math.max(x0, x1);
    const top = Math.min(y0, y1);
    const bottom = Math.max(y0, y1);
    return [[left, top], [right, top], [right, bottom], [left, bottom]];
  }

  function at(event) {
    const frame = svg.getBoundingClientRect();
    const x = (event.clientX - frame.left) / frame.width;
    return [clamp(x), clamp((event.clientY - frame.top) / frame.height)];
  }

  function closePolygon() {
    if (corners.length >= 3) {
      masks.push(corners);
      write();
    }
    corners = [];
    draw();
  }

  function tap(point, target) {
    if (mode === "polygon") {
      const first = corners[0];
      if (corners.length >= 3 && Math.hypot(point[0] - first[0], point[1] - first[1]) < 0.03) closePolygon();
      else corners.push(point);
    } else {
      selected = target === undefined ? -1 : Number(target);
    }
    draw();
  }

  svg.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    svg.setPointerCapture(event.pointerId);
    const point = at(event);
    const target = event.target.dataset && event.target.dataset.index; // a mask pressed on, to select it
    drag = {start: point, now: point, moved: false, target};
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    drag.now = at(event);
    drag.moved = drag.moved || Math.hypot(drag.now[0] - drag.start[0], drag.now[1] - drag.start[1]) > TAP;
    draw();
  });
  svg.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const done = drag;
    done.now = at(event);
    drag = null;
    if (!done.moved) return tap(done.start, done.target);
    if (mode === "rectangle") {
      const points = box(done.start, done.now);
      if (points[1][0] - points[0][0] > TAP && points[2][1] - points[1][1] > TAP) {
        masks.push(points);
        selected = masks.length - 1;
        write();
      }
    }
    draw();
  });
  svg.addEventListener("pointercancel", () => { drag = null; draw(); });

  for (const button of tools.querySelectorAll("button[data-mode]")) {
    button.addEventListener("click", () => {
      mode = button.dataset.mode;
      corners = [];
      for (const other of tools.querySelectorAll("button[data-mode]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      draw();
    });
  }
  tools.querySelector('[data-do="close"]').addEventListener("click", closePolygon);
  tools.querySelector('[data-do="remove"]').addEventListener("click", () => {
    if (selected >= 0 && selected < masks.length) {
      masks.splice(selected, 1);
      selected = -1;
      write();
      draw();
    }
  });
  field.addEventListener("input", () => { masks = parse(field.value); selected = -1; draw(); });

  const picture = editor.querySelector("img");
  if (picture) {
    const fit = () => { // the picture's own shape, so that fractions of the box are fractions of the picture
      const {naturalWidth: width, naturalHeight: height} = picture;
      if (width) editor.style.aspectRatio = `${width} / ${height}`;
    };
    picture.addEventListener("load", fit);
    picture.addEventListener("error", () => picture.remove()); // no picture: draw on the plain 16:9 box
    if (picture.complete) fit();
  }
  masks = parse(field.value);
  tools.hidden = false;
  if (help) help.hidden = false;
  draw();
})();
