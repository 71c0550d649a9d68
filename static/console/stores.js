// The console's stores view (placeholder until its work lands).
import { label } from "../js/i18n.js";

export async function show(view) {
  view.append(label("h2", "console.nav.stores"));
}
