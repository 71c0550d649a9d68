// The marketer console (marketers and admins): one page, one view at a time, chosen by the
// URL's hash (#stores, #stores/<id>, #campaigns, #campaigns/<id>, #funnel/<id>, #audit), so
// the browser's back button and bookmarks work. Each view is a module exporting
// `show(view, ctx)`, which draws into `view` and may return a function that tears it down
// (closes sockets, removes maps) before the next view is drawn.
import { label, t } from "../js/i18n.js";
import { startPage } from "../js/shell.js";
import * as audit from "./audit.js";
import * as campaigns from "./campaigns.js";
import * as funnel from "./funnel.js";
import * as stores from "./stores.js";

// The sections in the navigation, in order: hash name -> [catalogue key, module].
const SECTIONS = {
  stores: ["console.nav.stores", stores],
  campaigns: ["console.nav.campaigns", campaigns],
  funnel: ["console.nav.funnel", funnel],
  audit: ["console.nav.audit", audit],
};

/** Go to a view: `navigate("campaigns", id)` sets #campaigns/<id>. */
export function navigate(...parts) {
  const hash = `#${parts.map(encodeURIComponent).join("/")}`;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

function route() {
  const [name, ...args] = location.hash.replace(/^#/, "").split("/").map(decodeURIComponent);
  return name in SECTIONS ? { name, args: args.filter(Boolean) } : { name: "stores", args: [] };
}

startPage({
  titleKey: "console.title",
  roles: ["marketer", "admin"],
  render(main, user) {
    const nav = document.createElement("nav");
    nav.className = "console-nav";
    nav.setAttribute("data-i18n-attr", "aria-label:console.nav.label");
    nav.setAttribute("aria-label", t("console.nav.label"));
    const list = document.createElement("ul");
    const links = {};
    for (const [name, [key]] of Object.entries(SECTIONS)) {
      const item = document.createElement("li");
      links[name] = label("a", key, null, { href: `#${name}` });
      item.append(links[name]);
      list.append(item);
    }
    nav.append(list);
    const view = document.createElement("div");
    view.className = "console-view";
    const welcome = label("p", "console.welcome", { name: user.display_name || user.email });
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
        if (typeof done === "function") done(); // a newer view was asked for meanwhile
      } else teardown = typeof done === "function" ? done : null;
    };
    window.addEventListener("hashchange", draw);
    return draw();
  },
});
