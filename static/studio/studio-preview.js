// The live screen's stream preview: the playback URL played muted in a <video> when it is HLS
// (an .m3u8 path) — by hls.js (npm, its self-contained ES module /vendor/hls.js/hls.min.mjs,
// imported only then) where Media Source Extensions play it, else natively where the browser
// plays HLS itself (Safari) — and a placeholder otherwise: not HLS, no player for HLS here, or
// the stream cannot be loaded (hls.js's fatal error). `data-state` says which: loading, ready,
// not_hls, unsupported, failed.
import { label, t } from "../js/i18n.js";

export function isHls(url) {
  try {
    return new URL(url).pathname.toLowerCase().endsWith(".m3u8");
  } catch {
    return false;
  }
}

export class Preview {
  constructor(url) {
    this.url = url;
    this.hls = null;
    this.element = document.createElement("figure");
    this.element.className = "preview";
    this.element.id = "preview";
    this.note = label("p", "studio.preview.loading", null, { class: "hint", id: "preview-note", role: "status" });
    this.element.append(this.note);
    this.start();
  }

  state(name, params = null) {
    this.element.dataset.state = name;
    this.note.dataset.i18n = `studio.preview.${name}`;
    if (params) this.note.dataset.i18nParams = JSON.stringify(params);
    this.note.textContent = t(`studio.preview.${name}`, params ?? {});
  }

  async start() {
    if (!isHls(this.url)) return this.state("not_hls");
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.controls = true;
    video.setAttribute("aria-label", t("studio.preview.video"));
    video.setAttribute("data-i18n-attr", "aria-label:studio.preview.video");
    this.state("loading");
    let Hls = null;
    try {
      Hls = (await import("/vendor/hls.js/hls.min.mjs")).default;
    } catch {
      Hls = null; // the library could not be loaded: try the browser's own player
    }
    if (this.closed) return;
    if (Hls && Hls.isSupported()) {
      this.element.dataset.player = "hls.js";
      this.hls = new Hls();
      this.hls.on(Hls.Events.MANIFEST_PARSED, () => this.state("ready"));
      this.hls.on(Hls.Events.ERROR, (_, data) => {
        if (!data.fatal) return;
        this.state("failed", { reason: data.details });
        this.hls.destroy();
        this.hls = null;
        video.remove();
      });
      this.element.prepend(video);
      this.hls.attachMedia(video);
      this.hls.loadSource(this.url);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      this.element.dataset.player = "native";
      video.addEventListener("loadedmetadata", () => this.state("ready"));
      video.addEventListener("error", () => {
        this.state("failed", { reason: String(video.error?.code ?? "") });
        video.remove();
      });
      video.src = this.url;
      this.element.prepend(video);
    } else {
      this.state("unsupported");
    }
  }

  close() {
    this.closed = true;
    this.hls?.destroy();
  }
}
