// Small helpers of the campaigns section: times typed in a chosen time zone, yuan typed for
// fen, form fields named by the API's field paths (so showError finds them), and lists.
import { showError } from "../js/api.js";
import { label, t } from "../js/i18n.js";

export const DEFAULT_TZ = "Asia/Shanghai";

/** The IANA time zones the browser knows (Intl), with the default first. */
export function timeZones() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const all = new Set([DEFAULT_TZ, "UTC", ...zones]);
  return [...all];
}

/** How far a zone's wall clock is ahead of UTC at an instant (ms). */
function zoneOffsetMs(ms, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const get = (type) => Number(parts.find((part) => part.type === type).value);
  const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return wall - Math.floor(ms / 1000) * 1000;
}

/** A datetime-local value ("2026-11-11T20:00") read as a wall time in `timeZone`, as unix
 *  seconds; null when it is not a time. */
export function zonedToUnix(local, timeZone) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local || "");
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  let utc = wall - zoneOffsetMs(wall, timeZone);
  // Near a daylight-saving change the offset at the guess can differ from the one at the result.
  const again = zoneOffsetMs(utc, timeZone);
  if (again !== wall - utc) utc = wall - again;
  return utc / 1000;
}

/** Unix seconds as a datetime-local value on `timeZone`'s wall clock. */
export function unixToZoned(seconds, timeZone) {
  const ms = seconds * 1000;
  return new Date(ms + zoneOffsetMs(ms, timeZone)).toISOString().slice(0, 16);
}

/** Yuan typed by a person ("120", "120.5", "¥1,200.50") as integer fen; "" is null; a bad
 *  value is NaN (the caller says so next to the field). */
export function yuanToFen(text) {
  const clean = String(text ?? "").trim().replace(/^[¥￥]/, "").replace(/,/g, "");
  if (!clean) return null;
  if (!/^\d{1,12}(\.\d{1,2})?$/.test(clean)) return Number.NaN;
  const [whole, part = ""] = clean.split(".");
  return Number(whole) * 100 + Number(part.padEnd(2, "0"));
}

/** Fen as the yuan text an input shows ("1250" -> "12.50"); null is "". */
export function fenToYuan(fen) {
  if (fen === null || fen === undefined) return "";
  return (fen / 100).toFixed(2);
}

/** A whole number typed in an input; "" is null, anything else not whole is NaN. */
export function wholeNumber(text) {
  const clean = String(text ?? "").trim();
  if (!clean) return null;
  return /^-?\d+$/.test(clean) ? Number(clean) : Number.NaN;
}

let fields = 0; // ids stay unique when two forms on a page have a field of the same name

/** A labelled input (or select/textarea): `name` is the API's field path ("caps.total"). */
export function field(name, key, { type = "text", value = "", tag = "input", hint = null, params = null, attrs = {} } = {}) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const input = document.createElement(tag);
  input.id = `f${++fields}-${name.replace(/[^\w-]+/g, "-")}`;
  input.name = name;
  if (tag === "input") input.type = type;
  for (const [attribute, val] of Object.entries(attrs)) input.setAttribute(attribute, val);
  if (tag !== "select") input.value = value ?? "";
  wrap.append(label("label", key, params, { for: input.id }), input);
  if (hint) {
    const note = label("p", hint, null, { class: "hint", id: `${input.id}-hint` });
    input.setAttribute("aria-describedby", note.id);
    wrap.append(note);
  }
  return wrap;
}

/** A select's options: [[value, catalogue key or null, text when no key]]. */
export function options(select, items, selected) {
  for (const [value, key, text] of items) {
    const option = new Option(key ? t(key) : text, value, false, value === selected);
    if (key) option.dataset.i18n = key;
    select.append(option);
  }
  return select;
}

// The form's alert lives with showError, which fills it; re-exported for this section's forms.
export { formAlert } from "../js/api.js";

/** Show an API error next to the input its field names: "targets.stores[3]" falls back to
 *  "targets.stores", then "targets"; a model-wide error ("body") goes to the input whose name
 *  its message mentions, else to the form's alert. */
export function showFieldError(form, error) {
  const has = (name) => form.querySelector(`[name="${CSS.escape(name)}"]`);
  let name = error.field || "";
  if (name === "body") {
    const named = [...form.querySelectorAll("[name]")].find((el) => el.name && (error.message || "").includes(el.name));
    name = named ? named.name : "";
  }
  while (name && !has(name)) {
    const shorter = name.replace(/(\[\d+\]|\.[^.[\]]+)$/, "");
    name = shorter === name ? "" : shorter;
  }
  showError(form, { code: error.code, message: error.message, field: name || null });
}

/** A note that says a client-side check failed, shown like the server's errors. */
export function localError(form, fieldName, key) {
  showError(form, { code: null, message: t(key), field: fieldName });
}

/** A status badge: draft / scheduled / live / paused / ended. */
export function statusBadge(status) {
  const badge = label("span", `campaigns.status.${status}`, null, { class: `status-badge status-${status}` });
  badge.dataset.status = status;
  return badge;
}

/** A burn bar: what was used of a cap, as text (always) and a bar (for the eye). */
export function burnBar(used, cap, format = String) {
  const wrap = document.createElement("div");
  wrap.className = "burn";
  if (cap === null || cap === undefined) {
    wrap.append(label("span", "campaigns.burn_uncapped", { used: format(used) }));
    return wrap;
  }
  const percent = cap > 0 ? Math.min(100, Math.round((used / cap) * 1000) / 10) : 100;
  wrap.append(label("span", "campaigns.burn_of", { used: format(used), cap: format(cap), percent }));
  const bar = document.createElement("span");
  bar.className = "burn-bar";
  bar.setAttribute("aria-hidden", "true");
  const fill = document.createElement("span");
  fill.style.width = `${percent}%`;
  if (percent >= 90) fill.className = "burn-high";
  bar.append(fill);
  wrap.append(bar);
  return wrap;
}
