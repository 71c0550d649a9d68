// The marketer console (marketers and admins): one page, one view at a time, chosen by the
// URL's hash (#stores, #stores/<id>, #campaigns, #campaigns/<id>, #funnel/<id>, #audit,
// #webhooks, #webhooks/<endpoint id>), so
// the browser's back button and bookmarks work. Each view is a module exporting
// `show(view, ctx)`, which draws into `view` and may return a function that tears it down
// (closes sockets, removes maps) before the next view is drawn.
import { startSections } from "../js/views.js";
import * as audit from "./audit.js";
import * as campaigns from "./campaigns.js";
import * as funnel from "./funnel.js";
import * as stores from "./stores.js";
import * as webhooks from "./webhooks.js";

// The sections in the navigation, in order: hash name -> [catalogue key, module].
const SECTIONS = {
  stores: ["console.nav.stores", stores],
  campaigns: ["console.nav.campaigns", campaigns],
  funnel: ["console.nav.funnel", funnel],
  audit: ["console.nav.audit", audit],
  webhooks: ["console.nav.webhooks", webhooks],
};

startSections({
  titleKey: "console.title",
  roles: ["marketer", "admin"],
  welcomeKey: "console.welcome",
  navKey: "console.nav.label",
  sections: SECTIONS,
  fallback: "stores",
});
