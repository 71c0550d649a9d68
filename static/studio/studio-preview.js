// The live screen's stream preview: the shared player (../js/player.js: hls.js where Media
// Source Extensions play HLS, else the browser's own HLS player, else a placeholder that says
// why) with the studio's id (#preview, its note #preview-note) and texts (studio.preview.*).
// The preview only shows the picture: it does not start playing by itself.
import { Player } from "../js/player.js";

export class Preview {
  constructor(url) {
    this.player = new Player({ id: "preview", keys: "studio.preview", className: "preview" });
    this.element = this.player.element;
    this.player.play(url);
  }

  close() {
    this.player.close();
  }
}
