// Strings, money and times in the reader's language: one catalogue per language under
// /static/i18n/<lang>.json. The language comes from the browser unless the reader picked one
// (remembered in localStorage; it is not a secret).
export const LANGUAGES = { en: "English", "zh-CN": "简体中文" };
const STORED = "footfall.lang";

let lang = "en";
let catalogue = {};

/** Return the language to start in: the remembered choice, else the browser's, else English. */
export function initialLanguage() {
  const stored = localStorage.getItem(STORED);
  if (stored in LANGUAGES) return stored;
  for (const wanted of navigator.languages || [navigator.language]) {
    if (/^zh\b/i.test(wanted)) return "zh-CN";
    if (/^en\b/i.test(wanted)) return "en";
  }
  return "en";
}

/** Return the language in use. */
export function language() {
  return lang;
}

/** Load a language's catalogue, remember the choice and translate the document. */
export async function setLanguage(next, { remember = true } = {}) {
  if (!(next in LANGUAGES)) next = "en";
  const response = await fetch(`/static/i18n/${next}.json`);
  if (!response.ok) throw new Error(`no catalogue for ${next} (${response.status})`);
  catalogue = await response.json();
  lang = next;
  if (remember) localStorage.setItem(STORED, next);
  document.documentElement.lang = next;
  translate(document);
  document.dispatchEvent(new CustomEvent("languagechange", { detail: { lang: next } }));
}

/** Tell whether the catalogue has a text for a key. */
export function has(key) {
  return key in catalogue;
}

/** Return the catalogue's text for a key, with {name} placeholders filled from params. */
export function t(key, params = {}) {
  let text = catalogue[key];
  if (text === undefined) {
    console.warn(`i18n: no "${key}" in ${lang}`);
    text = key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? param(params[name]) : whole));
}

/** A placeholder's value: {key} is a catalogue text (so it follows language changes), a
 *  list is its values joined, anything else is shown as it is. */
function param(value) {
  if (Array.isArray(value)) return value.map(param).join(" / ");
  if (value && typeof value === "object" && "key" in value) return t(value.key);
  return String(value);
}

/** Translate every element under root that names a key: data-i18n (text, with placeholders
 *  from the JSON of data-i18n-params) and data-i18n-attr="attribute:key;attribute:key"
 *  (attributes such as aria-label). A language change translates them again. */
export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n, el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : {});
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attribute, key] = pair.split(":");
      if (attribute && key) el.setAttribute(attribute.trim(), t(key.trim()));
    }
  }
}

/** Make an element with attributes and, optionally, a plain text (label's sibling for text
 *  that is not from the catalogue: names, comments, numbers). */
export function element(tag, attributes = {}, text = null) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  if (text !== null) el.textContent = text;
  return el;
}

/** Make an element that shows a catalogue text, kept translated on language changes. */
export function label(tag, key, params = null, attributes = {}) {
  const el = document.createElement(tag);
  el.dataset.i18n = key;
  if (params) el.dataset.i18nParams = JSON.stringify(params);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  el.textContent = t(key, params || {});
  return el;
}

/** Format an amount in fen (integer hundredths of a yuan) as ¥ with two decimals. */
export function formatMoney(fen) {
  return new Intl.NumberFormat(lang, {
    style: "currency",
    currency: "CNY",
    currencyDisplay: "narrowSymbol",
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  }).format(fen / 100);
}

/** Format a time (unix seconds, a Date or an ISO string) in a time zone (a store's or a
 *  campaign's, e.g. "Asia/Shanghai"), with the zone's name shown. */
export function formatTime(when, timeZone, options = { dateStyle: "medium", timeStyle: "short" }) {
  const date = typeof when === "number" ? new Date(when * 1000) : new Date(when);
  const text = new Intl.DateTimeFormat(lang, { ...options, timeZone }).format(date);
  return `${text} (${timeZone})`;
}
