// Flash drops on the live screen: N coupons of an offer of the stream's campaign (the offers a
// live drop may issue: GET /api/streams/<id>/offers) with a claim window. The running drop
// shows a countdown to its `ends_at`, the claimed counter (from `feedback`, every 2 s, and the
// `drop` / `drop_sold_out` broadcasts) and, once it is over, the winners count.
import { api, clearErrors, showError } from "../js/api.js";
import { label, t } from "../js/i18n.js";
import { field, formAlert, localError } from "../console/campaign-util.js";

export class Drops {
  /** `send(name, payload)` sends a /host event (rejects with the error envelope);
   *  `readOnly` (an admin watching): the running drop without the form. */
  constructor(stream, send, readOnly = false) {
    this.stream = stream;
    this.send = send;
    this.drop = null;
    this.timer = null;
    this.element = document.createElement("section");
    this.element.className = "card";
    this.element.setAttribute("aria-labelledby", "drops-title");
    this.current = document.createElement("div");
    this.current.id = "current-drop";
    this.form = this.dropForm();
    this.element.append(label("h2", "studio.drops.title", null, { id: "drops-title" }), this.current);
    if (readOnly) {
      this.current.append(label("p", "studio.drops.none", null, { class: "hint" }));
      return;
    }
    this.element.append(this.form);
    this.loadOffers();
  }

  close() {
    clearInterval(this.timer);
  }

  async loadOffers() {
    const select = this.form.querySelector('[name="offer_id"]');
    let offers = [];
    try {
      offers = (await api("GET", `/api/streams/${encodeURIComponent(this.stream.id)}/offers`)).items;
    } catch (error) {
      showError(this.form, { ...error, field: "offer_id" });
    }
    select.replaceChildren(...offers.map((offer) => {
      const option = document.createElement("option");
      option.value = offer.id;
      option.textContent = offer.name;
      return option;
    }));
    if (!offers.length) localError(this.form, "offer_id", "studio.drops.no_offers");
    // The room's state may have come first: a running drop keeps the button disabled.
    this.form.querySelector("button[type=submit]").disabled = !offers.length || this.running();
  }

  /** Whether a drop is shown and not over yet (one drop runs at a time). */
  running() {
    return Boolean(this.drop && !this.drop.finished);
  }

  dropForm() {
    const form = document.createElement("form");
    form.noValidate = true;
    form.className = "drop-form";
    form.append(
      field("offer_id", "studio.drops.offer", { tag: "select" }),
      field("quantity", "studio.drops.quantity", { type: "number", value: "10", attrs: { min: "1", max: "100000" } }),
      field("window_s", "studio.drops.window", { type: "number", value: "60", attrs: { min: "10", max: "300" } }),
      formAlert(),
      label("button", "studio.drops.start", null, { type: "submit", id: "drop-start" }),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const offer = form.querySelector('[name="offer_id"]').value;
      const quantity = Number(form.querySelector('[name="quantity"]').value);
      const windowS = Number(form.querySelector('[name="window_s"]').value);
      if (!offer) return localError(form, "offer_id", "studio.drops.no_offers");
      if (!Number.isInteger(quantity) || quantity < 1 || quantity > 100000) return localError(form, "quantity", "studio.drops.quantity_invalid");
      if (!Number.isInteger(windowS) || windowS < 10 || windowS > 300) return localError(form, "window_s", "studio.drops.window_invalid");
      try {
        this.show(await this.send("drop", { offer_id: offer, quantity, window_s: windowS }));
      } catch (error) {
        showError(form, error);
      }
    });
    return form;
  }

  /** A drop from the state, a `drop` broadcast or `feedback` (null: no drop running). */
  show(drop) {
    if (!drop) {
      if (this.drop && this.drop.status === "open") this.finish();
      return;
    }
    if (this.drop && this.drop.id === drop.id) {
      // Feedback may lag a claim heard a moment ago: the counter never goes back.
      const claimed = Math.max(this.drop.claimed ?? 0, drop.claimed ?? drop.quantity - drop.remaining);
      this.drop = { ...this.drop, ...drop, claimed };
    } else {
      this.drop = { ...drop, claimed: drop.claimed ?? drop.quantity - drop.remaining };
      this.draw();
    }
    this.tick();
  }

  soldOut(dropId) {
    if (!this.drop || this.drop.id !== dropId) return;
    this.drop.claimed = this.drop.quantity;
    this.drop.status = "sold_out";
    this.drop.finished = false; // a feedback without the drop may have finished it a moment ago
    this.finish();
  }

  draw() {
    const drop = this.drop;
    clearInterval(this.timer);
    this.current.replaceChildren(
      label("h3", "studio.drops.running", { title: drop.title }, { id: "drop-heading" }),
      label("p", "studio.drops.countdown", { seconds: 0 }, { id: "drop-countdown", role: "timer" }),
      label("p", "studio.drops.claimed", { claimed: 0, quantity: drop.quantity }, { id: "drop-claimed" }),
    );
    this.winners = label("p", "studio.drops.none", null, { id: "drop-winners", role: "status" });
    this.winners.hidden = true;
    this.current.append(this.winners);
    this.timer = setInterval(() => this.tick(), 500);
    this.form.querySelector("#drop-start").disabled = true;
  }

  tick() {
    const drop = this.drop;
    if (!drop || !this.current.querySelector("#drop-countdown")) return;
    const left = Math.max(0, Math.ceil(drop.ends_at - Date.now() / 1000));
    setText(this.current.querySelector("#drop-countdown"), "studio.drops.countdown", { seconds: left });
    setText(this.current.querySelector("#drop-claimed"), "studio.drops.claimed", { claimed: drop.claimed, quantity: drop.quantity });
    if (drop.status === "open" && left === 0) this.finish();
  }

  /** The drop is over: sold out (every coupon won) or its window closed (the last claimed
   *  count heard, at most one feedback period old; the report after the show has the rest). */
  finish() {
    const drop = this.drop;
    if (!drop || drop.finished) return;
    drop.finished = true;
    clearInterval(this.timer);
    this.timer = null;
    this.form.querySelector("#drop-start").disabled = false;
    setText(this.current.querySelector("#drop-countdown"), "studio.drops.countdown", { seconds: 0 });
    setText(this.current.querySelector("#drop-claimed"), "studio.drops.claimed", { claimed: drop.claimed, quantity: drop.quantity });
    setText(this.winners, "studio.drops.winners", { count: drop.claimed });
    this.winners.hidden = false;
  }
}

function setText(element, key, params) {
  const text = t(key, params);
  element.dataset.i18n = key;
  element.dataset.i18nParams = JSON.stringify(params);
  if (element.textContent !== text) element.textContent = text;
}
