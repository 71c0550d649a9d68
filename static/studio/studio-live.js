// The studio's live screen (#live/<id>): the host console over the /host namespace. On every
// connect it asks the server for the room's state (`state`), so a reload or a reconnect shows
// the same pins, sold-out marks, poll and announcement; `feedback` (every 2 s while live) moves
// the poll's tallies and the viewer count. It works while the stream is scheduled (a
// rehearsal: the hosts' moves reach only the hosts' consoles; viewers get the stage as set
// when the stream goes live). An admin watches: the same screen without its controls.
import { api, errorText } from "../js/api.js";
import { formatMoney, label, t } from "../js/i18n.js";
import { connect } from "../js/socket.js";
import { field, formAlert, localError } from "../console/campaign-util.js";
import { clearErrors } from "../js/api.js";
import { Drops } from "./studio-drops.js";
import { Feedback } from "./studio-feedback.js";
import { Moderation } from "./studio-moderation.js";
import { Preview } from "./studio-preview.js";
import { confirmEnd, statusBadge } from "./studio-streams.js";

export const MAX_PINS = 3;
const POLLS = (sid) => `footfall.studio.polls.${sid}`;

/** The polls prepared for a stream, kept in this browser (localStorage) until started. */
export function preparedPolls(sid) {
  try {
    const polls = JSON.parse(localStorage.getItem(POLLS(sid)) || "[]");
    return Array.isArray(polls) ? polls : [];
  } catch {
    return [];
  }
}

function keepPolls(sid, polls) {
  localStorage.setItem(POLLS(sid), JSON.stringify(polls));
}

export async function show(view, ctx) {
  const [sid] = ctx.args;
  view.append(label("a", "studio.back_stream", null, { href: `#streams/${sid || ""}`, class: "back" }));
  if (!["host", "admin"].includes(ctx.user.role)) {
    view.append(label("p", "studio.live.hosts_only", null, { role: "alert", class: "form-error" }));
    return;
  }
  let stream;
  try {
    stream = await api("GET", `/api/streams/${encodeURIComponent(sid)}`);
  } catch (error) {
    view.append(label("p", "studio.load_failed", { message: errorText(error) }, { role: "alert", class: "form-error" }));
    return;
  }
  const screen = new LiveScreen(view, stream, ctx);
  return () => screen.close();
}

class LiveScreen {
  constructor(view, stream, ctx) {
    this.stream = stream;
    this.ctx = ctx;
    this.state = null;
    this.closed = false;
    // An admin watches: the server refuses every move of theirs, so no control is drawn.
    this.readOnly = ctx.user.role !== "host";
    const head = document.createElement("section");
    head.className = "card live-head";
    head.setAttribute("aria-labelledby", "live-title");
    this.connection = label("span", "studio.live.connecting", null, { role: "status", id: "connection", class: "connection off" });
    this.status = document.createElement("span");
    this.viewers = label("span", "studio.live.viewers", { count: 0 }, { id: "viewers" });
    const line = document.createElement("p");
    line.className = "live-line";
    line.append(this.connection, " ", this.status, " ", this.viewers);
    this.rehearsal = label("p", "studio.live.rehearsal", null, { class: "hint", id: "rehearsal" });
    const watching = label("p", "studio.live.watching", null, { class: "hint", id: "watching" });
    watching.hidden = !this.readOnly;
    this.moves = document.createElement("div");
    this.moves.className = "actions";
    this.alert = label("p", "studio.moves.none", null, { role: "alert", class: "form-error", id: "live-alert" });
    this.alert.hidden = true;
    this.preview = new Preview(stream.playback_url);
    head.append(label("h2", "studio.live.title", { title: stream.title }, { id: "live-title" }), line, watching, this.rehearsal, this.moves, this.alert, this.preview.element);

    const grid = document.createElement("div");
    grid.className = "live-grid";
    this.products = document.createElement("section");
    this.products.className = "card";
    this.products.setAttribute("aria-labelledby", "pins-title");
    this.announce = this.announcePanel();
    this.polls = document.createElement("section");
    this.polls.className = "card";
    this.polls.setAttribute("aria-labelledby", "polls-title");
    this.moderation = new Moderation((name, payload) => this.act(name, payload), this.readOnly);
    this.drops = new Drops(stream, (name, payload) => this.send(name, payload), this.readOnly);
    this.live = new Feedback();
    grid.append(this.products, this.live.element, this.announce, this.polls, this.drops.element, this.moderation.element);
    view.append(head, grid);

    this.socket = connect("/host", { stream_id: stream.id });
    this.socket.on("connect", () => {
      this.connection.dataset.i18n = "studio.live.connected";
      this.connection.textContent = t("studio.live.connected");
      this.connection.className = "connection on";
      this.refresh();
    });
    this.socket.on("disconnect", () => this.offline());
    this.socket.on("connect_error", (error) => {
      this.offline();
      const envelope = error && error.data && error.data.error;
      if (envelope && ["not_your_stream", "stream_not_found", "forbidden_role"].includes(envelope.code)) {
        this.fail(envelope);
        this.socket.close(); // refused for good: reconnecting would be refused again
      }
    });
    this.socket.on("feedback", (feedback) => this.feedback(feedback));
    // The room's broadcasts (to viewers and to every console of the stream): another host's
    // moves and the viewers' comments, votes and questions.
    this.socket.on("pinned", (data) => this.heard(() => {
      this.state.pinned = data.products;
      this.drawProducts();
    }));
    this.socket.on("product", (data) => this.heard(() => this.productChanged(data)));
    this.socket.on("announcement", (data) => this.heard(() => {
      this.state.announcement = data;
      this.drawAnnouncement();
    }));
    this.socket.on("stream_status", (data) => this.heard(() => {
      this.stream.status = data.status;
      this.drawHead();
    }));
    this.socket.on("poll", (data) => this.heard(() => {
      this.state.poll = data;
      this.drawPolls();
    }));
    this.socket.on("drop", (data) => this.heard(() => this.drops.show(data)));
    this.socket.on("drop_sold_out", (data) => this.heard(() => this.drops.soldOut(data.drop_id)));
    this.socket.on("poll_tallies", (data) => this.heard(() => this.tallies(data.poll_id, data.tallies)));
    for (const name of ["comment", "comment_deleted", "comment_pinned", "question", "question_answered", "slow_mode"]) {
      this.socket.on(name, (data) => this.heard(() => this.moderation.event(name, data)));
    }
  }

  /** Apply a broadcast once the state is drawn (before it, the coming `state` has it). */
  heard(apply) {
    if (this.state && !this.closed) apply();
  }

  close() {
    this.closed = true;
    this.drops.close();
    this.live.close();
    this.preview.close();
    this.socket.close();
  }

  offline() {
    this.connection.dataset.i18n = "studio.live.connecting";
    this.connection.textContent = t("studio.live.connecting");
    this.connection.className = "connection off";
  }

  fail(error) {
    this.alert.textContent = errorText(error);
    this.alert.hidden = false;
  }

  /** Send a /host event; resolve with its ack, or reject with the envelope's error. */
  send(name, payload) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(10_000).emit(name, payload ?? {}, (timeout, ack) => {
        if (timeout) reject({ code: "network_error", message: t("error.network") });
        else if (ack && ack.error) reject(ack.error);
        else resolve(ack);
      });
    });
  }

  /** Send an event and show a refusal in the header's alert; resolve with the ack or null. */
  async act(name, payload) {
    this.alert.hidden = true;
    try {
      return await this.send(name, payload);
    } catch (error) {
      this.fail(error);
      return null;
    }
  }

  async refresh() {
    try {
      this.state = await this.send("state");
    } catch (error) {
      this.fail(error);
      return;
    }
    this.stream = { ...this.stream, ...this.state.stream, products: this.state.products };
    this.drawHead();
    this.drawProducts();
    this.drawAnnouncement();
    this.drawPolls();
    this.moderation.load(this.state);
    this.drops.show(this.state.drop);
    this.setViewers(this.state.viewers);
  }

  setViewers(count) {
    this.viewers.dataset.i18nParams = JSON.stringify({ count });
    this.viewers.textContent = t("studio.live.viewers", { count });
  }

  drawHead() {
    this.status.replaceChildren(statusBadge(this.stream.status));
    this.rehearsal.hidden = this.stream.status !== "scheduled";
    this.moves.replaceChildren();
    if (this.stream.status === "scheduled" && !this.readOnly) {
      const start = label("button", "studio.moves.go_live", null, { type: "button", id: "live-start" });
      start.addEventListener("click", async () => {
        if (await this.act("start")) this.refresh();
      });
      this.moves.append(start);
    }
    if (this.stream.status === "live" && !this.readOnly) {
      const end = label("button", "studio.moves.end", null, { type: "button", id: "live-end", class: "danger" });
      end.addEventListener("click", () =>
        confirmEnd(this.stream, end, async () => {
          if (await this.act("end")) this.refresh();
        }),
      );
      this.moves.append(end);
    }
    if (this.stream.status === "ended") {
      this.moves.append(label("a", "studio.report.open", null, { href: `#report/${this.stream.id}`, class: "button-link", id: "open-report" }));
    }
  }

  // --- products: pin up to three, reorder, unpin, mark sold out ------------------------

  /** A product heard (its sold-out mark changed): in the list and among the pins. */
  productChanged(product) {
    const { offset, rehearsal, ...fields } = product;
    const swap = (list) => list.map((p) => (p.id === fields.id ? { ...p, ...fields } : p));
    this.state.products = swap(this.state.products);
    this.state.pinned = swap(this.state.pinned);
    this.drawProducts();
  }

  async soldOut(product) {
    const ack = await this.act("sold_out", { product_id: product.id, sold_out: !product.sold_out });
    if (ack) {
      this.state.pinned = ack.pinned;
      this.productChanged(ack.product);
    }
  }

  drawProducts() {
    const focused = document.activeElement?.dataset?.key;
    this.drawProductLists();
    if (focused) this.products.querySelector(`[data-key="${CSS.escape(focused)}"]:not([disabled])`)?.focus();
  }

  drawProductLists() {
    const pinned = this.state.pinned.map((p) => p.id);
    const section = this.products;
    section.replaceChildren(label("h2", "studio.pins.title", null, { id: "pins-title" }));
    const pins = document.createElement("ol");
    pins.className = "pin-list";
    pins.id = "pin-list";
    pins.setAttribute("aria-labelledby", "pins-title");
    if (!pinned.length) section.append(label("p", "studio.pins.none", null, { class: "hint" }));
    this.state.pinned.forEach((product, i) => {
      const li = document.createElement("li");
      li.dataset.productId = product.id;
      const name = document.createElement("span");
      name.className = "pin-name";
      name.textContent = product.name;
      const row = document.createElement("span");
      row.className = "actions";
      if (product.sold_out) row.append(soldOutBadge());
      li.append(name, row);
      pins.append(li);
      if (this.readOnly) return;
      const up = label("button", "studio.pins.up", { name: product.name }, { type: "button", "data-key": `up:${product.id}` });
      up.disabled = i === 0;
      up.addEventListener("click", () => this.reorder(pinned, i, i - 1));
      const down = label("button", "studio.pins.down", { name: product.name }, { type: "button", "data-key": `down:${product.id}` });
      down.disabled = i === pinned.length - 1;
      down.addEventListener("click", () => this.reorder(pinned, i, i + 1));
      const unpin = label("button", "studio.pins.unpin", { name: product.name }, { type: "button", "data-key": `unpin:${product.id}` });
      unpin.addEventListener("click", () => this.pins("unpin", product.id));
      row.append(up, down, unpin);
    });
    section.append(pins, label("h3", "studio.pins.products", null, { id: "all-products-title" }));
    if (!this.state.products.length) {
      section.append(label("p", "studio.pins.no_products", null, { class: "hint" }));
      return;
    }
    const all = document.createElement("ul");
    all.className = "product-list";
    all.id = "live-products";
    all.setAttribute("aria-labelledby", "all-products-title");
    for (const product of this.state.products) {
      const li = document.createElement("li");
      li.className = "product";
      li.dataset.productId = product.id;
      if (product.image) {
        const img = document.createElement("img");
        img.src = `/api/streams/${this.stream.id}/products/${product.id}/thumb.jpg?v=${product.image.etag}`;
        img.alt = "";
        img.className = "thumb small";
        li.append(img);
      }
      const text = document.createElement("div");
      const name = document.createElement("strong");
      name.textContent = product.name;
      text.append(name, document.createElement("br"), formatMoney(product.price_fen));
      if (product.sold_out) text.append(" ", soldOutBadge());
      li.append(text);
      all.append(li);
      if (this.readOnly) continue;
      const isPinned = pinned.includes(product.id);
      const button = label("button", isPinned ? "studio.pins.unpin" : "studio.pins.pin", { name: product.name }, { type: "button", "data-key": `toggle:${product.id}` });
      button.disabled = !isPinned && pinned.length >= MAX_PINS;
      button.addEventListener("click", () => this.pins(isPinned ? "unpin" : "pin", product.id));
      const sold = label("button", product.sold_out ? "studio.pins.in_stock" : "studio.pins.sold_out", { name: product.name }, { type: "button", "data-key": `sold:${product.id}` });
      sold.addEventListener("click", () => this.soldOut(product));
      li.append(button, sold);
    }
    section.append(all);
  }

  async pins(name, productId) {
    const ack = await this.act(name, { product_id: productId });
    if (ack) {
      this.state.pinned = ack.pinned;
      this.drawProducts();
    }
  }

  /** Move the pin at `from` to `to`: pins are kept in pinning order, so the pins from the
   *  first changed place on are unpinned and pinned again in the new order. */
  async reorder(order, from, to) {
    const next = [...order];
    const [moved] = next.splice(from, 1);
    next.splice(to, 0, moved);
    const first = Math.min(from, to);
    let ack = null;
    for (const id of order.slice(first)) {
      ack = await this.act("unpin", { product_id: id });
      if (!ack) return this.refresh();
    }
    for (const id of next.slice(first)) {
      ack = await this.act("pin", { product_id: id });
      if (!ack) return this.refresh();
    }
    this.state.pinned = ack.pinned;
    this.drawProducts();
    this.products.querySelector(`#pin-list li[data-product-id="${CSS.escape(moved)}"] button:not([disabled])`)?.focus();
  }

  // --- announcements -----------------------------------------------------------------------

  announcePanel() {
    const section = document.createElement("section");
    section.className = "card";
    section.setAttribute("aria-labelledby", "announce-title");
    this.lastAnnouncement = label("p", "studio.announce.none", null, { id: "last-announcement", class: "hint" });
    const form = document.createElement("form");
    form.noValidate = true;
    const text = field("text", "studio.announce.text", { tag: "textarea", attrs: { maxlength: "280", rows: "2" } });
    const alert = formAlert();
    form.append(text, alert, label("button", "studio.announce.send", null, { type: "submit", id: "announce-send" }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const input = form.querySelector("textarea");
      if (!input.value.trim()) return localError(form, "text", "studio.announce.empty");
      try {
        const record = await this.send("announce", { text: input.value });
        this.state.announcement = record;
        this.drawAnnouncement();
        form.reset();
      } catch (error) {
        alert.textContent = errorText(error);
        alert.hidden = false;
      }
    });
    section.append(label("h2", "studio.announce.title", null, { id: "announce-title" }), this.lastAnnouncement);
    if (!this.readOnly) section.append(form);
    return section;
  }

  drawAnnouncement() {
    const record = this.state.announcement;
    if (!record) return;
    this.lastAnnouncement.className = "";
    this.lastAnnouncement.dataset.i18n = "studio.announce.last";
    this.lastAnnouncement.dataset.i18nParams = JSON.stringify({ text: record.text });
    this.lastAnnouncement.textContent = t("studio.announce.last", { text: record.text });
  }

  // --- polls: prepared before the show, started with one click, live tallies -----------

  drawPolls() {
    const section = this.polls;
    const sid = this.stream.id;
    section.replaceChildren(label("h2", "studio.polls.title", null, { id: "polls-title" }));
    const poll = this.state.poll;
    const current = document.createElement("div");
    current.id = "current-poll";
    if (poll) {
      current.append(label("h3", poll.closed_at ? "studio.polls.last" : "studio.polls.open", { question: poll.question }));
      const table = document.createElement("table");
      table.id = "poll-tallies";
      table.append(label("caption", "studio.polls.tallies_caption"));
      const head = table.createTHead().insertRow();
      head.append(label("th", "studio.polls.col_option", null, { scope: "col" }), label("th", "studio.polls.col_votes", null, { scope: "col" }));
      const body = table.createTBody();
      poll.options.forEach((option, i) => {
        const row = body.insertRow();
        const name = document.createElement("th");
        name.scope = "row";
        name.textContent = option;
        row.append(name);
        const cell = row.insertCell();
        cell.textContent = String(poll.tallies[i] ?? 0);
        cell.dataset.option = String(i);
      });
      current.append(table);
      if (!poll.closed_at && !this.readOnly) {
        const close = label("button", "studio.polls.close", null, { type: "button", id: "poll-close" });
        close.addEventListener("click", async () => {
          const ack = await this.act("poll_close", { poll_id: poll.id });
          if (ack) {
            this.state.poll = ack;
            this.drawPolls();
          }
        });
        current.append(close);
      }
    }
    section.append(current);
    if (this.readOnly) {
      if (!poll) current.append(label("p", "studio.polls.none", null, { class: "hint" }));
      return;
    }

    const prepared = preparedPolls(sid);
    section.append(label("h3", "studio.polls.prepared", null, { id: "prepared-title" }));
    const list = document.createElement("ul");
    list.id = "prepared-polls";
    list.setAttribute("aria-labelledby", "prepared-title");
    if (!prepared.length) section.append(label("p", "studio.polls.none_prepared", null, { class: "hint" }));
    const open = poll && !poll.closed_at;
    prepared.forEach((draft, i) => {
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = `${draft.question} (${draft.options.join(" / ")})`;
      const start = label("button", "studio.polls.start", { question: draft.question }, { type: "button" });
      start.disabled = Boolean(open);
      start.addEventListener("click", async () => {
        const ack = await this.act("poll_start", draft);
        if (ack) {
          keepPolls(sid, preparedPolls(sid).filter((_, j) => j !== i));
          this.state.poll = ack;
          this.drawPolls();
          section.querySelector("#poll-close")?.focus();
        }
      });
      const remove = label("button", "studio.polls.remove", { question: draft.question }, { type: "button" });
      remove.addEventListener("click", () => {
        keepPolls(sid, preparedPolls(sid).filter((_, j) => j !== i));
        this.drawPolls();
      });
      li.append(text, " ", start, " ", remove);
      list.append(li);
    });
    section.append(list, this.pollForm());
  }

  pollForm() {
    const sid = this.stream.id;
    const form = document.createElement("form");
    form.noValidate = true;
    form.className = "poll-form";
    form.setAttribute("aria-labelledby", "poll-form-title");
    const alert = formAlert();
    form.append(
      label("h3", "studio.polls.prepare", null, { id: "poll-form-title" }),
      field("question", "studio.polls.question", { attrs: { maxlength: "200" } }),
      field("options", "studio.polls.options", { tag: "textarea", hint: "studio.polls.options_hint", attrs: { rows: "3" } }),
      field("duration_s", "studio.polls.duration", { type: "number", value: "120", attrs: { min: "10", max: "3600" } }),
      alert,
      label("button", "studio.polls.save", null, { type: "submit", id: "poll-save" }),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearErrors(form);
      const question = form.querySelector('[name="question"]').value.trim();
      const choices = form.querySelector('[name="options"]').value.split("\n").map((s) => s.trim()).filter(Boolean);
      const duration = Number(form.querySelector('[name="duration_s"]').value);
      if (!question) return localError(form, "question", "studio.polls.question_missing");
      if (choices.length < 2 || choices.length > 6) return localError(form, "options", "studio.polls.options_count");
      if (!Number.isInteger(duration) || duration < 10 || duration > 3600) return localError(form, "duration_s", "studio.polls.duration_invalid");
      keepPolls(sid, [...preparedPolls(sid), { question, options: choices, duration_s: duration }]);
      this.drawPolls();
      this.polls.querySelector('[name="question"]')?.focus();
    });
    return form;
  }

  /** The server's feedback (every 2 s while live): viewers and the poll's tallies. */
  feedback(feedback) {
    if (!this.state || this.closed) return;
    this.setViewers(feedback.viewers);
    this.live.update(feedback);
    this.moderation.feedback(feedback.questions);
    this.drops.show(feedback.drop);
    const poll = feedback.poll;
    if (!poll) return;
    const same = this.state.poll && this.state.poll.id === poll.id && Boolean(this.state.poll.closed_at) === Boolean(poll.closed_at);
    this.state.poll = poll;
    if (!same) return this.drawPolls();
    this.tallies(poll.id, poll.tallies);
  }

  /** Show a poll's tallies in place (a vote heard, or the feedback). */
  tallies(pollId, tallies) {
    if (!this.state.poll || this.state.poll.id !== pollId) return;
    this.state.poll.tallies = tallies;
    for (const cell of this.polls.querySelectorAll("#poll-tallies td[data-option]")) {
      const value = String(tallies[Number(cell.dataset.option)] ?? 0);
      if (cell.textContent !== value) cell.textContent = value;
    }
  }
}

/** The "Sold out" badge of a product. */
function soldOutBadge() {
  return label("span", "studio.pins.sold_out_badge", null, { class: "status-badge sold-out" });
}
