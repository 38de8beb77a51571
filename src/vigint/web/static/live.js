// A camera's live view (templates/live.html): fragmented MP4 from the page's own socket into Media Source
// Extensions (ManagedMediaSource where the browser has it: iPhones from iOS 17.1; else MediaSource); without
// either, the camera's snapshot every 2 s. The video's currentTime is the stream's time (seconds since its
// first frame): the server sends the offset of its fragments. The page shows how far behind the newest
// received frame it plays, and jumps to it when more than 3 s behind (a slow phone, a tab in the background).
"use strict";
(() => { // the cameras page: each streaming camera's snapshot, again every 5 s
  const tiles = document.querySelectorAll("img[data-refresh]");
  if (tiles.length) {
    setInterval(() => {
      for (const tile of tiles) tile.src = `${tile.src.split("?")[0]}?t=${Date.now()}`;
    }, 5000);
  }
})();

(() => {
  const player = document.getElementById("player");
  if (!player) return;
  const video = document.getElementById("video");
  const status = document.getElementById("lag");
  const MAX_BEHIND_SECONDS = 3; // past this, jump to the live edge
  const EDGE_SECONDS = 0.3; // how far behind the newest frame playing resumes: a little to absorb jitter
  const KEEP_SECONDS = 20; // what the buffer keeps behind the picture; older media is removed
  const STREAM_ENDED = 4404; // the server's close code (live.py CLOSE_CODES)
  const RELOAD_MS = 2000;
  const Source = window.ManagedMediaSource || window.MediaSource;
  let source = null;
  let buffer = null;
  let following = false;
  let over = false;
  const pending = [];

  function say(text, kind) {
    status.textContent = text;
    status.className = kind;
  }

  function pictures() {
    const picture = document.createElement("img");
    picture.alt = "";
    picture.src = player.dataset.snapshot;
    video.replaceWith(picture);
    say(player.dataset.pictures, "muted");
    setInterval(() => { picture.src = `${player.dataset.snapshot}?t=${Date.now()}`; }, 2000);
  }

  function open(start) {
    buffer = source.addSourceBuffer(`video/mp4; codecs="${start.codec}"`);
    buffer.mode = "segments";
    buffer.timestampOffset = start.offset;
    buffer.addEventListener("updateend", () => { follow(); append(); });
  }

  function append() {
    if (!buffer || buffer.updating || !pending.length) return;
    const joined = new Uint8Array(pending.reduce((total, part) => total + part.byteLength, 0));
    let at = 0;
    for (const part of pending.splice(0)) { // what came meanwhile, in one append
      joined.set(new Uint8Array(part), at);
      at += part.byteLength;
    }
    try {
      buffer.appendBuffer(joined);
    } catch (error) { // the buffer is full: drop what is behind the picture, then go on
      buffer.remove(0, Math.max(0, video.currentTime - 1));
    }
  }

  function follow() {
    const ranges = video.buffered;
    if (!buffer || !ranges.length || buffer.updating) return;
    const start = ranges.start(ranges.length - 1);
    const end = ranges.end(ranges.length - 1);
    if (!following || video.currentTime < start || end - video.currentTime > MAX_BEHIND_SECONDS) {
      video.currentTime = Math.max(start, end - EDGE_SECONDS);
      following = !pending.length; // the start's GOP may still be coming in: jump again once it is in
      video.play().catch(() => {});
    }
    const behind = Math.max(0, end - video.currentTime).toFixed(1).replace(".", player.dataset.point);
    if (!over) say(player.dataset.behind.replace("{seconds}", behind), "live");
    if (video.currentTime - ranges.start(0) > KEEP_SECONDS * 1.5) {
      buffer.remove(0, video.currentTime - KEEP_SECONDS);
    }
  }

  function connect() {
    const address = new URL(player.dataset.socket, location.href);
    address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(address);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data);
        if (message.type === "start") open(message);
        return;
      }
      pending.push(event.data);
      append();
    };
    socket.onclose = (event) => {
      over = true;
      say(event.code === 4008 ? player.dataset.slow : player.dataset.ended, "error");
      // The stream ended, or its picture changed size (a new init segment, a new buffer): the page opens
      // again, live if the camera streams (again), else saying it does not.
      if (event.code === STREAM_ENDED) setTimeout(() => location.reload(), RELOAD_MS);
    };
  }

  if (!Source) {
    pictures();
    return;
  }
  source = new Source();
  video.disableRemotePlayback = true; // ManagedMediaSource plays only without AirPlay (or with an alternative)
  video.src = URL.createObjectURL(source);
  source.addEventListener("sourceopen", connect, {once: true});
  setInterval(follow, 250);
  document.addEventListener("visibilitychange", follow);
})();
