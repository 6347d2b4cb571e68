// Kakashi's dance player: skeletons drawn on a canvas from the music's own clock.
//
// An anywidget front-end (export default {render}) that also runs without a kernel: the
// self-contained HTML of kakashi.widgets hands it a read-only model with the same state.
// State (set by kakashi.widgets.Player): fps, names, poses (base64 little-endian int16
// millimetres, one [T, 17, 3] per dance), frames, layouts {side, overlay}: {centres, half,
// height}, look (colours, skeleton, camera constants of kakashi.player.stage), audio (a data
// URI or ""), duration (s), peaks (base64 int8 min/max pairs), beats (s), size (px),
// overlay, elevation, azimuth, zoom (camera), title.
// Every animation frame reads the clock (audio.currentTime while the music plays) and draws
// the pose nearest to it; the root element's data-drawn-time / data-clock-time say which
// frame time was drawn at which clock time.

const SPEEDS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2];
const SIZES = {S: 320, M: 480, L: 640};
const SEEK_S = 5;            // seconds an arrow key seeks (one frame with shift)
const STRIP_PX = 44;         // height of the waveform strip
const ORBIT_DEG_PER_PX = 0.4;
const CSS = `
.kakashi-player{font:13px/1.3 system-ui,sans-serif;color:#222;display:inline-block;outline:none;
  background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px;user-select:none}
.kakashi-player:focus-visible{border-color:#1f77b4}
.kakashi-player .k-title{font-weight:600;text-align:center;margin-bottom:2px}
.kakashi-player canvas{display:block}
.kakashi-player .k-view{cursor:grab;touch-action:none}
.kakashi-player .k-strip{cursor:pointer;margin-top:4px}
.kakashi-player .k-bar{display:flex;gap:6px;align-items:center;margin-top:4px;flex-wrap:wrap}
.kakashi-player button{min-width:30px;padding:2px 6px;border:1px solid #bbb;border-radius:3px;background:#f6f6f6;cursor:pointer}
.kakashi-player .k-time{font-family:ui-monospace,monospace;min-width:120px}
.kakashi-player input[type=range]{width:80px}
.kakashi-player:fullscreen{display:flex;flex-direction:column;align-items:center;justify-content:center}
`;

function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function metres(b64) { // int16 millimetres -> Float32Array metres [T * 17 * 3]
  const mm = new Int16Array(bytes(b64).buffer), out = new Float32Array(mm.length);
  for (let i = 0; i < mm.length; i++) out[i] = mm[i] / 1000;
  return out;
}

function clock_text(t) {
  const m = Math.floor(t / 60), s = t - 60 * m;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

// The orbit camera of kakashi.player.stage.camera_basis / project.
function basis(elev, azim) {
  const e = elev * Math.PI / 180, a = azim * Math.PI / 180;
  const back = [Math.cos(e) * Math.cos(a), Math.sin(e), -Math.cos(e) * Math.sin(a)];
  let right = [back[2], 0, -back[0]];
  const n = Math.hypot(right[0], right[2]) || 1e-9;
  right = [right[0] / n, 0, right[2] / n];
  const up = [back[1] * right[2] - back[2] * right[1], back[2] * right[0] - back[0] * right[2],
              back[0] * right[1] - back[1] * right[0]];
  return [right, up, back];
}

class Clock { // the music's time while it plays; a wall clock where there is no music left
  constructor(audio, duration) {
    this.audio = audio; this.duration = duration; this.rate = 1;
    this.playing = false; this.onAudio = false; this.refused = false; this.base = 0; this.wall = 0;
  }
  covers(t) { const a = this.audio; return !!a && isFinite(a.duration) && t < a.duration - 0.02; }
  get time() {
    if (!this.playing) return this.base;
    if (this.onAudio) return this.audio.currentTime;
    return Math.min(this.duration, this.base + (performance.now() - this.wall) / 1000 * this.rate);
  }
  play() {
    if (this.time >= this.duration - 1e-3) this.base = 0;
    this.refused = false;
    this.playing = true;
    this._follow(this.base);
  }
  pause() {
    this.base = this.time; this.playing = false; this.onAudio = false;
    if (this.audio) this.audio.pause();
  }
  seek(t) {
    this.base = Math.max(0, Math.min(this.duration, t));
    if (this.audio && isFinite(this.audio.duration)) this.audio.currentTime = Math.min(this.base, this.audio.duration);
    if (this.playing) this._follow(this.base);
  }
  setRate(r) {
    this.base = this.time; this.wall = performance.now(); this.rate = r;
    if (this.audio) this.audio.playbackRate = r;
  }
  tick() { // called every animation frame: hand over from the music to the wall clock and stop at the end
    if (!this.playing) return;
    if (this.onAudio && (this.audio.ended || !this.covers(this.audio.currentTime))) this._follow(this.audio.currentTime);
    else if (!this.onAudio && !this.refused && this.covers(this.time)) this._follow(this.time);  // the music has loaded
    if (this.time >= this.duration) { this.pause(); this.base = this.duration; }
  }
  _follow(t) {
    this.base = t; this.wall = performance.now();
    this.onAudio = this.covers(t);
    if (this.onAudio) {
      if (Math.abs(this.audio.currentTime - t) > 1e-3) this.audio.currentTime = t;
      this.audio.playbackRate = this.rate;
      this.audio.play().catch(() => {  // the browser refused to play: the wall clock goes on alone
        this.base = this.time; this.wall = performance.now(); this.onAudio = false; this.refused = true;
      });
    } else if (this.audio) this.audio.pause();
  }
}

function el(tag, attrs = {}, parent = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  if (parent) parent.appendChild(node);
  return node;
}

function render({model, el: host}) {
  const look = model.get("look"), fps = model.get("fps"), names = model.get("names");
  const frames = model.get("frames"), duration = model.get("duration");
  const dances = model.get("poses").map(metres);
  const parents = look.parents, side = look.side;
  const bones = parents.map((p, c) => [p, c]).filter(([p]) => p >= 0);
  const numFrames = Math.max(...frames);
  let view = {elev: model.get("elevation"), azim: model.get("azimuth"), zoom: model.get("zoom")};
  let overlay = model.get("overlay"), size = model.get("size");

  if (!document.getElementById("kakashi-player-css")) el("style", {id: "kakashi-player-css", text: CSS}, document.head);
  const root = el("div", {class: "kakashi-player", tabindex: "0", "data-lm-suppress-shortcuts": "true",
                          "data-p-suppress-shortcuts": "true", "data-kakashi-uid": model.get("uid") || ""}, host);
  if (model.get("title")) el("div", {class: "k-title", text: model.get("title")}, root);
  const canvas = el("canvas", {class: "k-view", title: "drag to orbit, scroll to zoom, double-click to reset"}, root);
  const strip = el("canvas", {class: "k-strip", title: "waveform, beats (orange) and playhead: click to seek"}, root);
  const bar = el("div", {class: "k-bar"}, root);
  const playButton = el("button", {class: "k-play", title: "play / pause (space)", text: "\u25B6"}, bar);
  const timeText = el("span", {class: "k-time"}, bar);
  const speed = el("select", {class: "k-speed", title: "speed"}, bar);
  for (const s of SPEEDS) el("option", {value: s, text: `${s}\u00D7`}, speed).selected = s === 1;
  let audio = null, muteButton = null, volume = null;
  if (model.get("audio")) {
    audio = el("audio", {class: "kakashi-audio", preload: "auto", src: model.get("audio")}, root);
    muteButton = el("button", {class: "k-mute", title: "mute", text: "mute"}, bar);
    volume = el("input", {class: "k-volume", type: "range", min: 0, max: 1, step: 0.05, value: 1, title: "volume"}, bar);
  }
  let layoutSelect = null;
  if (names.length > 1) {
    layoutSelect = el("select", {class: "k-layout", title: "layout"}, bar);
    for (const [v, label] of [["side", "side by side"], ["overlay", "overlaid"]]) {
      el("option", {value: v, text: label}, layoutSelect).selected = (v === "overlay") === overlay;
    }
  }
  const sizeSelect = el("select", {class: "k-size", title: "size"}, bar);
  for (const [k, px] of Object.entries(SIZES)) el("option", {value: px, text: k}, sizeSelect);
  if (!Object.values(SIZES).includes(size)) el("option", {value: size, text: `${size}px`}, sizeSelect);
  sizeSelect.value = String(size);
  const fullButton = el("button", {class: "k-full", title: "full screen", text: "full screen"}, bar);
  const resetButton = el("button", {class: "k-reset", title: "reset the camera (double-click the picture)", text: "reset view"}, bar);

  const clock = new Clock(audio, duration);
  const ctx = canvas.getContext("2d"), sctx = strip.getContext("2d");
  let panelPx = size, width = 0, height = 0, dirty = true, shown = -1, stripImage = null;
  const labelPx = look.label_px;

  function panels() { return overlay || names.length === 1 ? 1 : names.length; }
  function resize() {
    const full = document.fullscreenElement === root;
    const n = panels();
    panelPx = full ? Math.floor(Math.min((window.innerWidth - 20) / n, window.innerHeight - STRIP_PX - 80)) : size;
    width = n * panelPx; height = panelPx;
    const r = window.devicePixelRatio || 1;
    for (const [c, h] of [[canvas, height], [strip, STRIP_PX]]) {
      c.width = Math.round(width * r); c.height = Math.round(h * r);
      c.style.width = `${width}px`; c.style.height = `${h}px`;
      c.getContext("2d").setTransform(r, 0, 0, r, 0, 0);
    }
    stripImage = null; dirty = true;
  }

  function drawStrip(t) {
    if (!stripImage) {
      const off = document.createElement("canvas");
      off.width = strip.width; off.height = strip.height;
      const o = off.getContext("2d"), r = window.devicePixelRatio || 1;
      o.setTransform(r, 0, 0, r, 0, 0);
      o.fillStyle = "#f4f4f4"; o.fillRect(0, 0, width, STRIP_PX);
      const peaks = model.get("peaks") ? new Int8Array(bytes(model.get("peaks")).buffer) : new Int8Array(0);
      const n = peaks.length / 2, mid = STRIP_PX / 2;
      o.fillStyle = "#8aa9c8";
      for (let i = 0; i < n; i++) { // peaks cover the music; the strip covers the dance
        const x0 = i / n * (model.get("audio_seconds") || duration) / duration * width;
        const x1 = (i + 1) / n * (model.get("audio_seconds") || duration) / duration * width;
        const lo = peaks[2 * i] / 127 * (mid - 2), hi = peaks[2 * i + 1] / 127 * (mid - 2);
        o.fillRect(x0, mid - hi, Math.max(1, x1 - x0), Math.max(1, hi - lo));
      }
      o.strokeStyle = look.trail; o.lineWidth = 1;
      for (const b of model.get("beats")) {
        const x = Math.round(b / duration * width) + 0.5;
        o.beginPath(); o.moveTo(x, 0); o.lineTo(x, 7); o.moveTo(x, STRIP_PX - 7); o.lineTo(x, STRIP_PX); o.stroke();
      }
      stripImage = off;
    }
    sctx.setTransform(1, 0, 0, 1, 0, 0);
    sctx.drawImage(stripImage, 0, 0);
    const r = window.devicePixelRatio || 1;
    sctx.setTransform(r, 0, 0, r, 0, 0);
    const x = t / duration * width;
    sctx.strokeStyle = "#d62728"; sctx.lineWidth = 2;
    sctx.beginPath(); sctx.moveTo(x, 0); sctx.lineTo(x, STRIP_PX); sctx.stroke();
  }

  function draw(frame) {
    const n = panels();
    const stage = model.get("layouts")[overlay ? "overlay" : "side"];
    const [R, U, B] = basis(view.elev, view.azim);
    const scale = look.fill * panelPx * view.zoom / Math.max(2 * stage.half, stage.height);
    const dist = look.distance;
    ctx.fillStyle = look.background; ctx.fillRect(0, 0, width, height);
    const cy = 0.5 * panelPx + labelPx / 2;
    const proj = (panel, x, y, z) => {
      const [tx, tz] = stage.centres[panel], ty = 0.5 * stage.height;
      const dx = x - tx, dy = y - ty, dz = z - tz;
      const rx = dx * R[0] + dy * R[1] + dz * R[2], ry = dx * U[0] + dy * U[1] + dz * U[2];
      const depth = dist - (dx * B[0] + dy * B[1] + dz * B[2]);
      const k = scale * dist / Math.max(depth, 0.1);
      return [(panel + 0.5) * panelPx + rx * k, cy - ry * k, depth];
    };
    for (let p = 0; p < n; p++) {
      ctx.save(); ctx.beginPath(); ctx.rect(p * panelPx, 0, panelPx, panelPx); ctx.clip();
      const [cx, cz] = stage.centres[p], h = stage.half, step = look.grid_step;
      ctx.strokeStyle = look.floor; ctx.lineWidth = 1; ctx.beginPath();
      for (let g = Math.ceil((cx - h) / step); g <= Math.floor((cx + h) / step); g++) {
        const a = proj(p, g * step, 0, cz - h), b = proj(p, g * step, 0, cz + h);
        ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]);
      }
      for (let g = Math.ceil((cz - h) / step); g <= Math.floor((cz + h) / step); g++) {
        const a = proj(p, cx - h, 0, g * step), b = proj(p, cx + h, 0, g * step);
        ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]);
      }
      ctx.stroke(); ctx.restore();
    }
    const lw = Math.max(2, panelPx / 160), radius = Math.max(2, panelPx / 180);
    dances.forEach((poses, i) => {
      const p = overlay ? 0 : i, t = Math.min(frame, frames[i] - 1);
      ctx.save(); ctx.beginPath(); ctx.rect(p * panelPx, 0, panelPx, panelPx); ctx.clip();
      ctx.strokeStyle = look.trail; ctx.lineWidth = 1; ctx.beginPath(); // the hip's path on the floor
      for (let k = 0; k <= t; k++) {
        const q = proj(p, poses[k * 51], 0, poses[k * 51 + 2]);
        if (k === 0) ctx.moveTo(q[0], q[1]); else ctx.lineTo(q[0], q[1]);
      }
      ctx.stroke();
      const pts = [];
      for (let j = 0; j < parents.length; j++) pts.push(proj(p, poses[t * 51 + 3 * j], poses[t * 51 + 3 * j + 1], poses[t * 51 + 3 * j + 2]));
      const colourOf = (j) => overlay ? look.dance_colours[i % look.dance_colours.length] : look.side_colours[side[j]];
      const order = bones.slice().sort((a, b) => (pts[b[0]][2] + pts[b[1]][2]) - (pts[a[0]][2] + pts[a[1]][2]));
      ctx.lineCap = "round"; ctx.lineWidth = lw;
      for (const [a, c] of order) { // far bones first
        ctx.strokeStyle = colourOf(c); ctx.beginPath();
        ctx.moveTo(pts[a][0], pts[a][1]); ctx.lineTo(pts[c][0], pts[c][1]); ctx.stroke();
      }
      pts.forEach((q, j) => { ctx.fillStyle = colourOf(j); ctx.beginPath(); ctx.arc(q[0], q[1], radius, 0, 2 * Math.PI); ctx.fill(); });
      ctx.restore();
    });
    ctx.font = "13px system-ui, sans-serif"; ctx.textAlign = "center";
    names.forEach((name, i) => {
      ctx.fillStyle = overlay ? look.dance_colours[i % look.dance_colours.length] : "#000";
      ctx.fillText(name, overlay ? width / 2 : (i + 0.5) * panelPx, 16 + (overlay ? 16 * i : 0));
    });
  }

  let raf = 0, lastText = "", lastTick = 0, tickS = 1 / 60;
  function tick(now) {
    if (lastTick) tickS += 0.1 * (Math.min(0.1, (now - lastTick) / 1000) - tickS);  // mean s between animation frames
    lastTick = now;
    clock.tick();
    const t = clock.time;
    // The picture stays up until the next animation frame: draw the pose of the middle of that wait.
    const ahead = clock.playing ? 0.5 * tickS * clock.rate : 0;
    const frame = Math.max(0, Math.min(numFrames - 1, Math.round((t + ahead) * fps)));
    if (frame !== shown || dirty) {
      draw(frame); shown = frame; dirty = false;
      root.dataset.view = [view.elev, view.azim, view.zoom].map((v) => v.toFixed(2)).join(",");
      root.dataset.drawnFrame = frame;
      root.dataset.drawnTime = (frame / fps).toFixed(4);
    }
    root.dataset.clockTime = t.toFixed(4);  // the clock the frame above was chosen by
    drawStrip(t);
    const text = `${clock_text(t)} / ${clock_text(duration)}`;
    if (text !== lastText) { timeText.textContent = text; lastText = text; }
    const icon = clock.playing ? "\u275A\u275A" : "\u25B6";
    if (playButton.textContent !== icon) playButton.textContent = icon;
    root.dataset.playing = clock.playing ? "1" : "0";
    raf = requestAnimationFrame(tick);
  }

  const toggle = () => { if (clock.playing) clock.pause(); else clock.play(); };
  const seekBy = (dt) => clock.seek(clock.time + dt);
  playButton.addEventListener("click", toggle);
  speed.addEventListener("change", () => clock.setRate(parseFloat(speed.value)));
  if (audio) {
    muteButton.addEventListener("click", () => {
      audio.muted = !audio.muted; muteButton.textContent = audio.muted ? "unmute" : "mute";
    });
    volume.addEventListener("input", () => { audio.volume = parseFloat(volume.value); });
  }
  if (layoutSelect) layoutSelect.addEventListener("change", () => {
    overlay = layoutSelect.value === "overlay"; model.set("overlay", overlay); model.save_changes(); resize();
  });
  sizeSelect.addEventListener("change", () => { size = parseInt(sizeSelect.value); model.set("size", size); model.save_changes(); resize(); });
  fullButton.addEventListener("click", () => {
    if (document.fullscreenElement === root) document.exitFullscreen(); else if (root.requestFullscreen) root.requestFullscreen();
  });
  const onFullscreen = () => resize();
  document.addEventListener("fullscreenchange", onFullscreen);
  resetButton.addEventListener("click", () => {
    const d = model.get("default_view");
    view = {elev: d[0], azim: d[1], zoom: 1}; dirty = true; saveView();
  });
  root.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT") return;
    if (e.key === " ") toggle();
    else if (e.key === "ArrowLeft") seekBy(e.shiftKey ? -1 / fps : -SEEK_S);
    else if (e.key === "ArrowRight") seekBy(e.shiftKey ? 1 / fps : SEEK_S);
    else return;
    e.preventDefault(); e.stopPropagation();
  });
  let saving = false;  // our own camera changes come back as model events: ignore them
  function saveView() {
    saving = true;
    model.set("elevation", view.elev); model.set("azimuth", view.azim); model.set("zoom", view.zoom); model.save_changes();
    saving = false;
  }
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = {x: e.clientX, y: e.clientY, elev: view.elev, azim: view.azim};
    canvas.setPointerCapture(e.pointerId); canvas.style.cursor = "grabbing"; root.focus();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    view.azim = drag.azim - (e.clientX - drag.x) * ORBIT_DEG_PER_PX;
    view.elev = Math.max(-10, Math.min(89, drag.elev + (e.clientY - drag.y) * ORBIT_DEG_PER_PX));
    dirty = true;
  });
  const endDrag = () => { if (drag) { drag = null; canvas.style.cursor = ""; saveView(); } };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    view.zoom = Math.max(0.3, Math.min(5, view.zoom * Math.exp(-e.deltaY * 0.001)));
    dirty = true; saveView();
  }, {passive: false});
  canvas.addEventListener("dblclick", () => resetButton.click());
  strip.addEventListener("click", (e) => {
    const box = strip.getBoundingClientRect();
    clock.seek((e.clientX - box.left) / box.width * duration); root.focus();
  });
  for (const name of ["elevation", "azimuth", "zoom"]) {
    model.on(`change:${name}`, () => {
      if (saving) return;
      view = {elev: model.get("elevation"), azim: model.get("azimuth"), zoom: model.get("zoom")}; dirty = true;
    });
  }
  model.on("change:size", () => { size = model.get("size"); sizeSelect.value = String(size); resize(); });

  resize();
  raf = requestAnimationFrame(tick);
  return () => { // the view is removed
    cancelAnimationFrame(raf);
    document.removeEventListener("fullscreenchange", onFullscreen);
    if (audio) { audio.pause(); audio.removeAttribute("src"); }
  };
}

export default { render };
