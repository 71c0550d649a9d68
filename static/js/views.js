// One page, one view at a time, chosen by the address's hash ("#<section>/<arg>/…"), so Back,
// reload and bookmarks work: the marketer console, the host studio and the shopper app.
import { label, t } from "./i18n.js";
import { startPage } from "./shell.js";

/** Go to a view: navigate("campaigns", id) sets #campaigns/<id> (drawn again if it is there). */
export function navigate(...parts) {
  const hash = `#${parts.map(encodeURIComponent).join("/")}`;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

/** Return the hash's section and its arguments: { name, args } (split on "/", decoded). */
export function hashRoute() {
  const [name, ...args] = location.hash.replace(/^#/, "").split("/").map(decodeURIComponent);
  return { name, args: args.filter(Boolean) };
}

/** A <nav> (named by a catalogue key) of links to sections, from [section, catalogue key]
 *  pairs; return it with its links by section. */
export function sectionNav(className, labelKey, entries) {
  const nav = document.createElement("nav");
  nav.className = className;
  nav.setAttribute("data-i18n-attr", `aria-label:${labelKey}`);
  nav.setAttribute("aria-label", t(labelKey));
  const list = document.createElement("ul");
  const links = {};
  for (const [name, key] of entries) {
    const item = document.createElement("li");
    links[name] = label("a", key, null, { href: `#${name}` });
    item.append(links[name]);
    list.append(item);
  }
  nav.append(list);
  return { nav, links };
}

/** Draw the view the hash names, now and after each change of it. `route()` gives
 *  { name, args }; `draw(name, args)` draws into `view` (emptied first) and may resolve to a
 *  teardown function, run before the next view is drawn; when the hash changed again while a
 *  view was drawing, the newer one wins and the older one is torn down at once. The link of
 *  the section shown gets aria-current="page". `onError(error)` draws a view that failed
 *  (without it the error propagates). Return { ready, redraw, stop }: the first drawing, a
 *  function that draws the current hash again, and one that stops following the hash and
 *  tears the view down. */
export function followHash({ route, view, draw, links = {}, onError = null }) {
  let teardown = null;
  let drawing = 0;
  const end = () => {
    if (!teardown) return;
    try {
      teardown();
    } catch (error) {
      console.error(error);
    }
    teardown = null;
  };
  const redraw = async () => {
    const { name, args } = route();
    const turn = ++drawing;
    end();
    for (const [other, link] of Object.entries(links)) {
      if (other === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    view.replaceChildren();
    let done = null;
    try {
      done = await draw(name, args);
    } catch (error) {
      if (!onError) throw error;
      onError(error);
    }
    if (turn !== drawing) {
      if (typeof done === "function") done(); // a newer view was asked for meanwhile
    } else teardown = typeof done === "function" ? done : null;
  };
  window.addEventListener("hashchange", redraw);
  const stop = () => {
    window.removeEventListener("hashchange", redraw);
    drawing++;
    end();
  };
  return { ready: redraw(), redraw, stop };
}

/** Start a page of sections (the marketer console, the host studio): sign-in and roles
 *  (startPage), a welcome line, the navigation of the sections that have a catalogue key, and
 *  the view the hash names (`fallback` when it names none). `sections` maps a section's hash
 *  name to [catalogue key of its link, or null, module]; a module's `show(view, ctx)` draws it
 *  (ctx: user, args — the hash's parts after the section —, navigate) and may return a teardown. */
export function startSections({ titleKey, roles, welcomeKey, navKey, sections, fallback }) {
  const route = () => {
    const { name, args } = hashRoute();
    return name in sections ? { name, args } : { name: fallback, args: [] };
  };
  return startPage({
    titleKey,
    roles,
    render(main, user) {
      const entries = Object.entries(sections)
        .filter(([, [key]]) => key)
        .map(([name, [key]]) => [name, key]);
      const { nav, links } = sectionNav("console-nav", navKey, entries);
      const view = document.createElement("div");
      view.className = "console-view";
      const welcome = label("p", welcomeKey, { name: user.display_name || user.email });
      welcome.className = "welcome";
      main.append(welcome, nav, view);
      const draw = (name, args) => sections[name][1].show(view, { user, args, navigate });
      return followHash({ route, view, draw, links }).ready;
    },
  });
}
