// The staff till (staff of one store): type a coupon's short code or paste its scanned token,
// preview it against the basket, redeem it for an order, void a redemption within the window.
// The API checks that staff act only at their own store; the page shows which store that is.
import { api, clearErrors, errorText, showError } from "../js/api.js";
import { formatMoney, formatTime, label, t } from "../js/i18n.js";
import { startPage } from "../js/shell.js";

const DEFAULT_TZ = "Asia/Shanghai";
// Today's redemptions are read again every REFRESH_S seconds while the page is visible (paused
// while it is hidden, read at once when it shows again), so a redemption made at another till
// of the store appears by itself. A test (or a slow device) may set another interval, in
// seconds, under this sessionStorage key; it is read before each wait.
const REFRESH_S = 15;
export const REFRESH_KEY = "footfall.till.refresh_s";

/** Return the refresh interval in milliseconds (the tab's setting, 1–600 s, else REFRESH_S). */
export function refreshMs() {
  const set = Number(sessionStorage.getItem(REFRESH_KEY));
  const seconds = Number.isFinite(set) && set >= 1 ? Math.min(set, 600) : REFRESH_S;
  return seconds * 1000;
}

startPage({
  titleKey: "till.title",
  roles: ["staff"],
  async render(main, user) {
    const store = await loadStore(user.store_id);
    const till = new Till(main, user, store);
    till.draw();
  },
});

/** Return the staff's store (name and time zone), or a stand-in when it cannot be read. */
async function loadStore(storeId) {
  const fallback = { id: storeId, name: storeId, tz: DEFAULT_TZ };
  if (!storeId) return fallback;
  try {
    const store = await api("GET", `/api/stores/${encodeURIComponent(storeId)}`);
    return { id: store.id, name: store.name || store.id, tz: store.opening_hours?.tz || DEFAULT_TZ };
  } catch {
    return fallback;
  }
}

/** Parse a basket amount typed in yuan ("120", "120.5", "120.50") into integer fen, or null. */
export function yuanToFen(text) {
  const clean = String(text).trim().replace(/^¥/, "").replace(/,/g, "");
  if (!/^\d{1,9}(\.\d{1,2})?$/.test(clean)) return null;
  const [whole, part = ""] = clean.split(".");
  return Number(whole) * 100 + Number(part.padEnd(2, "0"));
}

class Till {
  constructor(main, user, store) {
    this.main = main;
    this.user = user;
    this.store = store;
  }

  draw() {
    const header = document.createElement("section");
    header.className = "card";
    header.append(
      label("p", "till.welcome", { name: this.user.display_name || this.user.email }),
      label("p", "till.store", { store: this.store.id }, { id: "till-store" }),
    );
    if (this.store.name !== this.store.id) header.append(label("p", "till.store_name", { name: this.store.name }));

    this.form = document.createElement("form");
    this.form.className = "card till-form";
    this.form.noValidate = true;
    this.form.setAttribute("aria-labelledby", "till-form-title");
    const alert = document.createElement("p");
    alert.className = "form-error";
    alert.dataset.formError = "";
    alert.setAttribute("role", "alert");
    alert.hidden = true;
    const redeem = label("button", "till.redeem", null, { type: "button", id: "till-redeem" });
    redeem.addEventListener("click", () => this.redeem());
    const actions = document.createElement("div");
    actions.className = "actions";
    const scan = label("button", "till.scan", null, { type: "button", id: "till-scan" });
    scan.addEventListener("click", () => (this.scanner ? this.stopScan() : this.startScan()));
    this.scanButton = scan;
    actions.append(label("button", "till.preview", null, { type: "submit", id: "till-preview" }), redeem, scan);
    this.camera = document.createElement("div");
    this.camera.className = "till-camera";
    this.camera.hidden = true;
    this.form.append(
      label("h3", "till.scan_title", null, { id: "till-form-title" }),
      field("code", "text", "till.code", { autocomplete: "off", autocapitalize: "characters", spellcheck: "false" }),
      field("basket_fen", "text", "till.basket", { inputmode: "decimal", autocomplete: "off" }),
      field("order_ref", "text", "till.order_ref", { autocomplete: "off" }),
      alert,
      actions,
      this.camera,
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.preview();
    });

    this.result = document.createElement("section");
    this.result.className = "card till-result";
    this.result.id = "till-result";
    this.result.setAttribute("aria-live", "polite");
    this.result.setAttribute("aria-labelledby", "till-result-title");
    this.result.hidden = true;

    this.today = document.createElement("section");
    this.today.className = "card till-today";
    this.today.setAttribute("aria-labelledby", "till-today-title");
    this.main.append(header, this.form, this.result, this.today);
    this.form.elements.code.focus();
    this.loadToday();
    this.keepFresh();
  }

  /** Read today's list again every refreshMs() while the page is visible; stop for good once
   *  the till is gone (signed out). */
  keepFresh() {
    const wait = () => {
      clearTimeout(this.timer);
      this.timer = null;
      if (document.visibilityState === "visible") this.timer = setTimeout(tick, refreshMs());
    };
    const tick = async () => {
      clearTimeout(this.timer);
      if (!this.today.isConnected) return stop();
      await this.loadToday();
      wait();
    };
    const shown = () => {
      if (!this.today.isConnected) return stop();
      if (document.visibilityState === "visible") tick();
      else wait(); // hidden: no timer until it shows again
    };
    const stop = () => {
      clearTimeout(this.timer);
      document.removeEventListener("visibilitychange", shown);
    };
    document.addEventListener("visibilitychange", shown);
    wait();
  }

  /** Draw today's redemptions at this store (GET /api/redemptions: staff see their own). The
   *  list is drawn again only when it changed, and keeps the keyboard focus when it had it. */
  async loadToday() {
    const title = label("h3", "till.today_title", null, { id: "till-today-title" });
    // A refresh and a read after a redemption may overlap: an older question's answer that
    // arrives last is dropped, so the list never goes back in time.
    const asked = (this.asked = (this.asked || 0) + 1);
    const fresh = () => {
      if (asked < (this.answered || 0)) return false;
      this.answered = asked;
      return true;
    };
    let page;
    try {
      page = await api("GET", "/api/redemptions");
    } catch (error) {
      if (!fresh() || !this.changed({ error: error.code, message: error.message })) return;
      const note = document.createElement("p");
      note.className = "form-error";
      note.setAttribute("role", "alert");
      note.textContent = errorText(error);
      this.today.replaceChildren(title, note);
      return;
    }
    if (!fresh() || !this.changed(page)) return;
    const focused = this.today.contains(document.activeElement);
    if (!page.items.length) {
      this.today.replaceChildren(title, label("p", "till.today_none", { day: page.day }));
      return;
    }
    const table = document.createElement("table");
    table.id = "till-today";
    const caption = label("caption", "till.today_caption", { day: page.day, timezone: page.timezone });
    const head = document.createElement("tr");
    for (const key of ["till.col_time", "till.col_code", "till.col_order", "till.col_basket", "till.col_discount", "till.col_status"]) {
      head.append(label("th", key, null, { scope: "col" }));
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    for (const item of page.items) {
      const row = document.createElement("tr");
      row.dataset.order = item.order_ref;
      const cell = (text) => {
        const td = document.createElement("td");
        td.textContent = text;
        return td;
      };
      const status = document.createElement("td");
      status.append(label("span", item.status === "voided" ? "till.status_voided" : "till.status_redeemed"));
      row.append(
        cell(formatTime(item.at, page.timezone, { timeStyle: "short" })),
        cell(item.code),
        cell(item.order_ref),
        cell(formatMoney(item.basket_fen)),
        cell(formatMoney(item.discount_fen)),
        status,
      );
      tbody.append(row);
    }
    table.append(caption, thead, tbody);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-labelledby", "till-today-title");
    wrap.append(table);
    this.today.replaceChildren(title, wrap);
    if (focused) wrap.focus();
  }

  /** Tell whether an answer differs from the one drawn last (and remember it). */
  changed(answer) {
    const seen = JSON.stringify(answer);
    if (seen === this.drawn) return false;
    this.drawn = seen;
    return true;
  }

  /** Scan a coupon's QR with the device camera: frames from getUserMedia are drawn on a canvas
   *  and decoded with jsQR (npm, /vendor/jsqr/); the first code found fills the code field and
   *  is checked against the basket when one is typed. */
  async startScan() {
    clearErrors(this.form);
    if (!window.jsQR || !navigator.mediaDevices?.getUserMedia) {
      return this.fail({ code: "till_no_camera", field: "code" });
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      console.warn("camera", error);
      return this.fail({ code: "till_no_camera", field: "code" });
    }
    const video = document.createElement("video");
    video.setAttribute("playsinline", "");
    video.muted = true;
    video.srcObject = stream;
    video.setAttribute("aria-hidden", "true");
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", { willReadFrequently: true });
    this.camera.replaceChildren(label("p", "till.scanning", null, { role: "status" }), video);
    this.camera.hidden = false;
    this.scanButton.dataset.i18n = "till.scan_stop";
    this.scanButton.textContent = t("till.scan_stop");
    this.scanner = { stream, frame: 0 };
    await video.play().catch(() => {});
    const tick = () => {
      if (!this.scanner) return;
      if (video.readyState >= video.HAVE_ENOUGH_DATA && video.videoWidth) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        const image = context.getImageData(0, 0, canvas.width, canvas.height);
        const found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
        if (found && found.data) return this.scanned(found.data);
      }
      this.scanner.frame = requestAnimationFrame(tick);
    };
    this.scanner.frame = requestAnimationFrame(tick);
  }

  stopScan() {
    if (!this.scanner) return;
    cancelAnimationFrame(this.scanner.frame);
    for (const track of this.scanner.stream.getTracks()) track.stop();
    this.scanner = null;
    this.camera.replaceChildren();
    this.camera.hidden = true;
    this.scanButton.dataset.i18n = "till.scan";
    this.scanButton.textContent = t("till.scan");
  }

  scanned(code) {
    this.stopScan();
    this.form.elements.code.value = code;
    if (yuanToFen(this.form.elements.basket_fen.value) === null) {
      this.form.elements.basket_fen.focus();
      return;
    }
    this.preview();
  }

  /** Read the form: {code, basket_fen, order_ref}, or null after showing what is wrong. */
  read({ needOrder }) {
    clearErrors(this.form);
    const data = new FormData(this.form);
    const code = String(data.get("code") || "").trim();
    if (!code) return this.fail({ code: "till_code_missing", field: "code" });
    const basket = yuanToFen(data.get("basket_fen") || "");
    if (basket === null) return this.fail({ code: "till_basket_invalid", field: "basket_fen" });
    const order = String(data.get("order_ref") || "").trim();
    if (needOrder && !order) return this.fail({ code: "till_order_missing", field: "order_ref" });
    return { code, basket_fen: basket, order_ref: order };
  }

  fail(error) {
    showError(this.form, error);
    return null;
  }

  async preview() {
    const body = this.read({ needOrder: false });
    if (!body) return;
    try {
      const answer = await api("POST", "/api/redemptions/preview", { code: body.code, basket_fen: body.basket_fen });
      this.showPreview(answer, body.basket_fen);
    } catch (error) {
      this.result.hidden = true;
      showError(this.form, error);
    }
  }

  async redeem() {
    const body = this.read({ needOrder: true });
    if (!body) return;
    try {
      const answer = await api("POST", "/api/redemptions", body);
      this.showRedeemed(answer, body);
      this.loadToday();
    } catch (error) {
      this.result.hidden = true;
      if (error.code === "ALREADY_REDEEMED" && error.details) {
        showError(this.form, { field: "code", message: this.alreadyText(error.details) });
      } else {
        showError(this.form, error);
      }
    }
  }

  async voidRedemption(code, orderRef, button) {
    button.disabled = true;
    try {
      await api("POST", "/api/redemptions/void", { code, order_ref: orderRef });
      this.fill("till.voided_title", [label("p", "till.voided", { order: orderRef })]);
      this.loadToday();
    } catch (error) {
      button.disabled = false;
      const note = this.result.querySelector("[data-void-error]");
      note.textContent = errorText(error);
      note.hidden = false;
    }
  }

  alreadyText(details) {
    return label("span", "till.already_redeemed", {
      store: details.store_id || "?",
      when: details.at ? formatTime(details.at, this.store.tz) : "?",
      order: details.order_ref || "?",
    }).textContent;
  }

  /** The offer's terms: title, kind, minimum spend. */
  terms(coupon) {
    const rows = [label("p", "till.offer", { title: coupon.title || coupon.offer_name }, { class: "offer" })];
    if (coupon.kind === "amount_off") rows.push(label("p", "till.kind_amount", { amount: formatMoney(coupon.amount_off_fen) }));
    if (coupon.kind === "percent_off") {
      rows.push(label("p", "till.kind_percent", { percent: coupon.percent_off, max: formatMoney(coupon.max_off_fen || 0) }));
    }
    if (coupon.kind === "gift") rows.push(label("p", "till.kind_gift", { gift: coupon.gift_item }));
    rows.push(label("p", "till.min_spend", { amount: formatMoney(coupon.min_spend_fen) }, { class: "min-spend" }));
    return rows;
  }

  showPreview(answer, basket) {
    const rows = this.terms(answer.coupon);
    rows.push(label("p", "till.basket_is", { amount: formatMoney(basket) }));
    if (answer.applies) {
      rows.push(
        label("p", "till.discount", { amount: formatMoney(answer.discount_fen) }, { class: "discount" }),
        label("p", "till.pay", { amount: formatMoney(answer.pay_fen) }, { class: "pay" }),
      );
      if (answer.gift_item) rows.push(label("p", "till.gift", { gift: answer.gift_item }));
    } else {
      const reason = answer.reason;
      const note = document.createElement("p");
      note.className = "form-error refusal";
      note.dataset.reason = reason;
      const redemption = answer.coupon.redemption;
      if (reason === "ALREADY_REDEEMED" && redemption) {
        note.textContent = this.alreadyText(redemption);
      } else {
        note.append(label("span", "till.refused", { reason: { key: `till.reason.${reason}` } }));
      }
      rows.push(note);
    }
    this.fill(answer.applies ? "till.preview_ok" : "till.preview_refused", rows);
  }

  showRedeemed(answer, body) {
    const r = answer.redemption;
    const rows = this.terms(answer.coupon);
    rows.push(
      label("p", "till.discount", { amount: formatMoney(r.discount_fen ?? answer.discount_fen) }, { class: "discount" }),
      label("p", "till.pay", { amount: formatMoney(r.basket_fen - (r.discount_fen ?? answer.discount_fen)) }, { class: "pay" }),
      label("p", "till.redeemed_at", { order: r.order_ref, when: formatTime(r.at, this.store.tz) }),
    );
    const voidButton = label("button", "till.void", null, { type: "button", id: "till-void" });
    voidButton.addEventListener("click", () => this.voidRedemption(body.code, r.order_ref, voidButton));
    const voidError = document.createElement("p");
    voidError.className = "form-error";
    voidError.dataset.voidError = "";
    voidError.setAttribute("role", "alert");
    voidError.hidden = true;
    rows.push(voidButton, voidError);
    this.fill(answer.outcome === "redeemed" ? "till.redeemed_title" : "till.redeemed_again_title", rows);
  }

  fill(titleKey, rows) {
    this.result.replaceChildren(label("h3", titleKey, null, { id: "till-result-title" }), ...rows);
    this.result.hidden = false;
  }
}

function field(name, type, key, attributes = {}) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const input = document.createElement("input");
  Object.assign(input, { id: `till-${name}`, name, type });
  for (const [attribute, value] of Object.entries(attributes)) input.setAttribute(attribute, value);
  wrap.append(label("label", key, null, { for: input.id }), input);
  return wrap;
}
