// The host studio (hosts; admins may watch): one page, one view at a time, chosen by the URL's
// hash like the marketer console: #streams (my streams), #streams/new, #streams/<id> (the
// stream's form, products, go live / end), #live/<id> (the live screen over /host) and
// #report/<id> (after the show: the report and its CSV files). Each
// view is a module exporting `show(view, ctx)`, which may return a teardown function.
import { startSections } from "../js/views.js";
import * as live from "./studio-live.js";
import * as report from "./studio-report.js";
import * as streams from "./studio-streams.js";

// hash name -> [catalogue key of the navigation link (null: not in the navigation), module]
const SECTIONS = {
  streams: ["studio.nav.streams", streams],
  live: [null, live],
  report: [null, report],
};

startSections({
  titleKey: "studio.title",
  roles: ["host", "admin"],
  welcomeKey: "studio.welcome",
  navKey: "studio.nav.label",
  sections: SECTIONS,
  fallback: "streams",
});
