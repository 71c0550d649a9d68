// The stream player shared by the host studio's preview (studio/studio-preview.js) and the
// shopper app's live room (app/app-live.js): a <figure> that plays a playback URL muted in a
// <video> when it is HLS (an .m3u8 path) — by hls.js (npm, its self-contained ES module
// /vendor/hls.js/hls.min.mjs, imported only then) where Media Source Extensions play it, else
// natively where the browser plays HLS itself (Safari: canPlayType of
// application/vnd.apple.mpegurl) — and a placeholder that says why otherwise: not HLS, no
// player for HLS in this browser, or the stream cannot be played (hls.js's fatal error, or the
// native player's error code). The figure's `data-state` says which (loading, ready, not_hls,
// unsupported, failed) and `data-player` how it plays (hls.js, native). Each page passes its
// own ids and i18n keys (`<keys>.video` names the video; `<keys>.<state>` is the note).
// Nothing is logged: a failure is shown, never thrown or written to the console.
import { label, t } from "./i18n.js";

/** The hls.js module served from npm (app/blueprints/pages.py VENDOR). */
export const HLS_JS = "/vendor/hls.js/hls.min.mjs";

/** Whether a playback URL is an HLS playlist (its path ends in .m3u8). */
export function isHls(url) {
  try {
    return new URL(url).pathname.toLowerCase().endsWith(".m3u8");
  } catch {
    return false;
  }
}

export class Player {
  /** `id`: the figure's id (its note is `<id>-note`); `keys`: the page's i18n prefix;
   *  `videoId`: the video's id, if any; `className`: the figure's classes; `autoplay`: start
   *  playing (muted, as browsers allow) as soon as the stream can play. */
  constructor({ id, keys, videoId = null, className = "player", autoplay = false }) {
    this.keys = keys;
    this.videoId = videoId;
    this.autoplay = autoplay;
    this.url = null;
    this.hls = null;
    this.video = null;
    this.element = document.createElement("figure");
    this.element.className = className;
    this.element.id = id;
    this.note = label("p", `${keys}.loading`, null, { class: "hint player-note", id: `${id}-note`, role: "status" });
    this.element.append(this.note);
  }

  /** Play `url`; the same URL again only when the last try failed (e.g. once a stream that
   *  had not started goes live). */
  play(url) {
    if (url === this.url && this.element.dataset.state !== "failed") return;
    this.url = url;
    this.stop();
    const run = (this.run = {}); // a newer play() or close() makes this one stale
    this.start(url, run);
  }

  state(name, params = null) {
    const key = `${this.keys}.${name}`;
    this.element.dataset.state = name;
    this.note.dataset.i18n = key;
    if (params) this.note.dataset.i18nParams = JSON.stringify(params);
    else delete this.note.dataset.i18nParams;
    this.note.textContent = t(key, params ?? {});
  }

  fail(reason) {
    this.state("failed", { reason });
    this.stop();
  }

  makeVideo() {
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.controls = true;
    video.autoplay = this.autoplay;
    if (this.videoId) video.id = this.videoId;
    video.setAttribute("aria-label", t(`${this.keys}.video`));
    video.setAttribute("data-i18n-attr", `aria-label:${this.keys}.video`);
    return video;
  }

  async start(url, run) {
    delete this.element.dataset.player;
    if (!isHls(url)) return this.state("not_hls");
    this.state("loading");
    let Hls = null;
    try {
      Hls = (await import(HLS_JS)).default;
    } catch {
      Hls = null; // the library could not be loaded: try the browser's own player
    }
    if (run !== this.run) return;
    const video = this.makeVideo();
    if (Hls && Hls.isSupported()) {
      this.element.dataset.player = "hls.js";
      const hls = new Hls();
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        if (run === this.run) this.state("ready");
      });
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.fatal && run === this.run) this.fail(data.details);
      });
      this.video = video;
      this.element.prepend(video);
      hls.attachMedia(video);
      hls.loadSource(url);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      this.element.dataset.player = "native";
      video.addEventListener("loadedmetadata", () => {
        if (run === this.run) this.state("ready");
      });
      video.addEventListener("error", () => {
        if (run === this.run) this.fail(String(video.error?.code ?? ""));
      });
      this.video = video;
      video.src = url;
      this.element.prepend(video);
    } else {
      this.state("unsupported");
    }
  }

  /** Stop playing and take the video away (the note stays). */
  stop() {
    this.hls?.destroy();
    this.hls = null;
    if (this.video) {
      this.video.removeAttribute("src");
      this.video.load();
      this.video.remove();
    }
    this.video = null;
  }

  close() {
    this.run = null;
    this.stop();
  }
}
