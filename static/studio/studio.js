// The host studio (hosts; admins may watch): one page, one view at a time, chosen by the URL's
// hash like the marketer console: #streams (my streams), #streams/new, #streams/<id> (the
// stream's form, products, go live / end), #live/<id> (the live screen over /host) and
// #report/<id> (after the show: the report and its CSV files). Each
// view is a module exporting `show(view, ctx)`, which may return a teardown function.
import { label, t } from "../js/i18n.js";
import { startPage } from "../js/shell.js";
import * as live from "./studio-live.js";
import * as report from "./studio-report.js";
import * as streams from "./studio-streams.js";

// hash name -> [catalogue key of the navigation link (null: not in the navigation), module]
const SECTIONS = {
  streams: ["studio.nav.streams", streams],
  live: [null, live],
  report: [null, report],
};

/** Go to a view: `navigate("streams", id)` sets #streams/<id>. */
export function navigate(...parts) {
  const hash = `#${parts.map(encodeURIComponent).join("/")}`;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

function route() {
  const [name, ...args] = location.hash.replace(/^#/, "").split("/").map(decodeURIComponent);
  return name in SECTIONS ? { name, args: args.filter(Boolean) } : { name: "streams", args: [] };
}

startPage({
  titleKey: "studio.title",
  roles: ["host", "admin"],
  render(main, user) {
    const nav = document.createElement("nav");
    nav.className = "console-nav";
    nav.setAttribute("data-i18n-attr", "aria-label:studio.nav.label");
    nav.setAttribute("aria-label", t("studio.nav.label"));
    const list = document.createElement("ul");
    const links = {};
    for (const [name, [key]] of Object.entries(SECTIONS)) {
      if (!key) continue;
      const item = document.createElement("li");
      links[name] = label("a", key, null, { href: `#${name}` });
      item.append(links[name]);
      list.append(item);
    }
    nav.append(list);
    const view = document.createElement("div");
    view.className = "console-view";
    const welcome = label("p", "studio.welcome", { name: user.display_name || user.email });
    welcome.className = "welcome";
    main.append(welcome, nav, view);

    let teardown = null;
    let drawing = 0;
    const draw = async () => {
      const { name, args } = route();
      const turn = ++drawing;
      if (teardown) {
        try {
          teardown();
        } catch (error) {
          console.error(error);
        }
        teardown = null;
      }
      for (const [other, link] of Object.entries(links)) {
        if (other === name) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
      view.replaceChildren();
      const done = await SECTIONS[name][1].show(view, { user, args, navigate });
      if (turn !== drawing) {
        if (typeof done === "function") done();
      } else teardown = typeof done === "function" ? done : null;
    };
    window.addEventListener("hashchange", draw);
    return draw();
  },
});
