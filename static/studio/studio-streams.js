// The studio's streams: my streams (#streams), a new stream (#streams/new) and one stream
// (#streams/<id>): its settings, its products (images by drag-and-drop or a file input,
// thumbnails from the server) and the moves go live / end.
import { ApiError, api, clearErrors, errorText, showError, token } from "../js/api.js";
import { askToConfirm } from "../js/confirm.js";
import { formatMoney, formatTime, label, t } from "../js/i18n.js";
import {
  DEFAULT_TZ,
  field,
  formAlert,
  localError,
  options,
  timeZones,
  unixToZoned,
  yuanToFen,
  zonedToUnix,
} from "../console/campaign-util.js";

export const MAX_PRODUCTS = 50;

export async function show(view, ctx) {
  const [first] = ctx.args;
  if (!first) return showList(view, ctx);
  return showStream(view, ctx, first === "new" ? null : first);
}

/** A stream's status as a badge: scheduled / live / ended. */
export function statusBadge(status) {
  const badge = label("span", `studio.status.${status}`, null, { class: `status-badge status-${status}` });
  badge.dataset.status = status;
  return badge;
}

/** Whether the user hosts the stream (admins watch every stream). */
function mine(stream, user) {
  return user.role === "admin" || (stream.hosts || []).includes(user.id);
}

// --- the list ---------------------------------------------------------------------------

async function showList(view, ctx) {
  const heading = label("h2", "studio.streams.title", null, { id: "streams-title" });
  const section = document.createElement("section");
  section.className = "card";
  section.setAttribute("aria-labelledby", "streams-title");
  const tools = document.createElement("div");
  tools.className = "list-tools";
  if (ctx.user.role === "host") {
    tools.append(label("a", "studio.streams.new", null, { href: "#streams/new", class: "button-link", id: "stream-new" }));
  }
  const body = document.createElement("div");
  section.append(heading, tools, body);
  view.append(section);
  const streams = [];
  try {
    let cursor = null;
    do {
      const query = new URLSearchParams({ limit: "100" });
      if (cursor) query.set("cursor", cursor);
      const page = await api("GET", `/api/streams?${query}`);
      streams.push(...page.items.filter((s) => mine(s, ctx.user)));
      cursor = page.next_cursor;
    } while (cursor && streams.length < 500);
  } catch (error) {
    body.append(label("p", "studio.load_failed", { message: errorText(error) }, { role: "alert", class: "form-error" }));
    return;
  }
  if (!streams.length) {
    body.append(label("p", "studio.streams.empty"));
    return;
  }
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  const table = document.createElement("table");
  table.id = "streams-table";
  table.append(label("caption", "studio.streams.caption", { zone: DEFAULT_TZ }));
  const head = table.createTHead().insertRow();
  for (const key of ["studio.streams.col_title", "studio.streams.col_status", "studio.streams.col_starts", "studio.streams.col_products", "studio.streams.col_live"]) {
    head.append(label("th", key, null, { scope: "col" }));
  }
  const rows = table.createTBody();
  for (const stream of streams) {
    const row = rows.insertRow();
    row.dataset.streamId = stream.id;
    const name = document.createElement("a");
    name.href = `#streams/${stream.id}`;
    name.textContent = stream.title;
    row.insertCell().append(name);
    row.insertCell().append(statusBadge(stream.status));
    row.insertCell().textContent = formatTime(stream.starts_at, DEFAULT_TZ);
    row.insertCell().textContent = String(stream.products.length);
    const liveCell = row.insertCell();
    if (stream.status !== "ended") {
      // An admin watches the live screen read-only; a host runs it.
      const key = ctx.user.role === "host" ? "studio.streams.open_live" : "studio.streams.watch_live";
      liveCell.append(label("a", key, { title: stream.title }, { href: `#live/${stream.id}` }));
    } else if (stream.status === "ended") {
      liveCell.append(label("a", "studio.report.open_named", { title: stream.title }, { href: `#report/${stream.id}` }));
    }
  }
  wrap.append(table);
  body.append(wrap);
}

// --- one stream -------------------------------------------------------------------------

async function showStream(view, ctx, id) {
  view.append(label("a", "studio.back", null, { href: "#streams", class: "back" }));
  let stream = null;
  if (id) {
    try {
      stream = await api("GET", `/api/streams/${encodeURIComponent(id)}`);
    } catch (error) {
      view.append(label("p", "studio.load_failed", { message: errorText(error) }, { role: "alert", class: "form-error" }));
      return;
    }
    if (!mine(stream, ctx.user)) {
      view.append(label("p", "studio.not_yours", null, { role: "alert", class: "form-error" }));
      return;
    }
  }
  const layout = document.createElement("div");
  layout.className = "studio-stream";
  view.append(layout);
  const form = streamForm(stream, ctx);
  layout.append(form);
  if (stream) {
    layout.append(movesCard(stream, ctx), new ProductsPanel(stream, ctx).element);
  }
}

/** The stream's settings: creates (POST) or changes (PATCH, while scheduled) the stream. */
function streamForm(stream, ctx) {
  const form = document.createElement("form");
  form.className = "card stream-form";
  form.noValidate = true;
  form.setAttribute("aria-labelledby", "stream-form-title");
  const title = stream ? label("h2", "studio.form.edit_title", { title: stream.title }, { id: "stream-form-title" }) : label("h2", "studio.form.new_title", null, { id: "stream-form-title" });
  const tz = field("timezone", "studio.form.timezone", { tag: "select" });
  const tzSelect = tz.querySelector("select");
  options(tzSelect, timeZones().map((z) => [z, null, z]), DEFAULT_TZ);
  const starts = field("starts_at", "studio.form.starts_at", {
    type: "datetime-local",
    value: stream ? unixToZoned(stream.starts_at, DEFAULT_TZ) : "",
    hint: "studio.form.starts_hint",
  });
  tzSelect.addEventListener("change", () => {
    // Keep the instant; show it in the newly picked zone.
    const input = starts.querySelector("input");
    const at = zonedToUnix(input.value, tzSelect.dataset.was || DEFAULT_TZ);
    if (at !== null) input.value = unixToZoned(at, tzSelect.value);
    tzSelect.dataset.was = tzSelect.value;
  });
  const fields = [
    field("title", "studio.form.title", { value: stream?.title, attrs: { maxlength: "120", required: "" } }),
    field("brand", "studio.form.brand", { value: stream?.brand, attrs: { maxlength: "100", required: "" } }),
    field("description", "studio.form.description", { tag: "textarea", value: stream?.description, attrs: { maxlength: "2000", rows: "3" } }),
    field("playback_url", "studio.form.playback_url", { type: "url", value: stream?.playback_url, hint: "studio.form.playback_hint", attrs: { required: "" } }),
    tz,
    starts,
    field("campaign_id", "studio.form.campaign_id", { value: stream?.campaign_id || "", hint: "studio.form.campaign_hint", attrs: { inputmode: "numeric" } }),
  ];
  if (ctx.user.role === "admin") {
    fields.push(field("hosts", "studio.form.hosts", { value: (stream?.hosts || []).join(", "), hint: "studio.form.hosts_hint" }));
  }
  const alert = formAlert();
  const save = label("button", stream ? "studio.form.save" : "studio.form.create", null, { type: "submit", id: "stream-save" });
  const done = label("p", "studio.form.saved", null, { role: "status", class: "saved-note" });
  done.hidden = true;
  form.append(title, ...fields, alert, save, done);
  const editable = !stream || stream.status === "scheduled";
  if (!editable) {
    for (const el of form.querySelectorAll("input, select, textarea, button")) el.disabled = true;
    form.append(label("p", "studio.form.locked", null, { class: "hint" }));
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    done.hidden = true;
    const data = new FormData(form);
    const at = zonedToUnix(String(data.get("starts_at") || ""), tzSelect.value);
    if (at === null) return localError(form, "starts_at", "studio.form.starts_missing");
    const body = {
      title: String(data.get("title") || ""),
      brand: String(data.get("brand") || ""),
      description: String(data.get("description") || ""),
      playback_url: String(data.get("playback_url") || ""),
      starts_at: at,
    };
    const campaign = String(data.get("campaign_id") || "").trim();
    if (campaign) body.campaign_id = campaign;
    if (ctx.user.role === "admin") {
      body.hosts = String(data.get("hosts") || "").split(/[\s,]+/).filter(Boolean);
    } else if (!stream) {
      body.hosts = [ctx.user.id];
    }
    save.disabled = true;
    try {
      const saved = stream
        ? await api("PATCH", `/api/streams/${stream.id}`, body)
        : await api("POST", "/api/streams", body);
      if (!stream) return ctx.navigate("streams", saved.id);
      done.hidden = false;
    } catch (error) {
      if (error.field && /^hosts\[/.test(error.field)) error.field = "hosts";
      showError(form, error);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

/** Go live / end (with a confirmation) and the way to the live screen. */
function movesCard(stream, ctx) {
  const card = document.createElement("section");
  card.className = "card";
  card.setAttribute("aria-labelledby", "moves-title");
  const status = document.createElement("p");
  status.append(label("span", "studio.moves.status"), " ", statusBadge(stream.status));
  const alert = label("p", "studio.moves.none", null, { role: "alert", class: "form-error" });
  alert.hidden = true;
  const row = document.createElement("div");
  row.className = "actions";
  const move = async (to, button) => {
    alert.hidden = true;
    button.disabled = true;
    try {
      await api("POST", `/api/streams/${stream.id}/transition`, { to });
      ctx.navigate("streams", stream.id);
    } catch (error) {
      alert.textContent = errorText(error);
      alert.hidden = false;
      button.disabled = false;
    }
  };
  if (stream.status === "scheduled") {
    const live = label("button", "studio.moves.go_live", null, { type: "button", id: "go-live" });
    live.addEventListener("click", () => move("live", live));
    row.append(live);
  }
  if (stream.status !== "ended") {
    const key = stream.status === "live" ? "studio.moves.end" : "studio.moves.cancel";
    const end = label("button", key, null, { type: "button", id: "end-stream", class: "danger" });
    end.addEventListener("click", () => confirmEnd(stream, end, () => move("ended", end)));
    row.append(end);
    const open = ctx.user.role === "host" ? "studio.moves.open_live" : "studio.moves.watch_live";
    row.append(label("a", open, null, { href: `#live/${stream.id}`, class: "button-link", id: "open-live" }));
  }
  if (stream.status === "ended") {
    row.append(label("a", "studio.report.open", null, { href: `#report/${stream.id}`, class: "button-link", id: "open-report" }));
  }
  card.append(label("h2", "studio.moves.title", null, { id: "moves-title" }), status, row, alert);
  return card;
}

/** Ask before ending a stream (a <dialog>; Escape or "Keep it" cancels). */
export function confirmEnd(stream, button, then) {
  askToConfirm({
    opener: button,
    titleKey: "studio.end.title",
    titleParams: { title: stream.title },
    textKey: "studio.end.text",
    yesKey: "studio.end.confirm",
    noKey: "studio.end.cancel",
    onYes: then,
  });
}

/** Send a product as multipart/form-data (the image as the `image` part) with the tab's
 *  token; resolve with the product, or reject with an ApiError. */
async function postProduct(sid, data) {
  let response;
  try {
    response = await fetch(`/api/streams/${sid}/products`, {
      method: "POST",
      headers: { Accept: "application/json", Authorization: `Bearer ${token()}` },
      body: data,
    });
  } catch {
    throw new ApiError(0, { code: "network_error", message: t("error.network") });
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.error) || { message: t("error.http", { status: response.status }) });
  }
  return body;
}

/** The stream's products (up to 50): thumbnails, remove, and the add form whose image comes
 *  from a file input or a file dropped on the drop zone. */
class ProductsPanel {
  constructor(stream, ctx) {
    this.stream = stream;
    this.ctx = ctx;
    this.file = null;
    const card = document.createElement("section");
    card.className = "card products-card";
    card.setAttribute("aria-labelledby", "products-title");
    this.count = label("p", "studio.products.count", { count: stream.products.length, max: MAX_PRODUCTS }, { id: "products-count" });
    this.list = document.createElement("ul");
    this.list.className = "product-list";
    this.list.id = "product-list";
    card.append(label("h2", "studio.products.title", null, { id: "products-title" }), this.count, this.list);
    if (stream.status !== "ended") card.append(this.addForm());
    this.element = card;
    this.draw();
  }

  draw() {
    const { products } = this.stream;
    this.count.dataset.i18nParams = JSON.stringify({ count: products.length, max: MAX_PRODUCTS });
    this.count.textContent = t("studio.products.count", { count: products.length, max: MAX_PRODUCTS });
    this.list.replaceChildren();
    for (const product of products) this.list.append(this.item(product));
    if (this.form) this.form.querySelector("button[type=submit]").disabled = products.length >= MAX_PRODUCTS;
  }

  item(product) {
    const li = document.createElement("li");
    li.className = "product";
    li.dataset.productId = product.id;
    if (product.image) {
      const img = document.createElement("img");
      img.src = `/api/streams/${this.stream.id}/products/${product.id}/thumb.jpg?v=${product.image.etag}`;
      img.alt = t("studio.products.thumb_alt", { name: product.name });
      img.width = product.image.thumb_width;
      img.height = product.image.thumb_height;
      img.className = "thumb";
      li.append(img);
    } else {
      li.append(label("span", "studio.products.no_image", null, { class: "thumb no-image" }));
    }
    const text = document.createElement("div");
    const name = document.createElement("strong");
    name.textContent = product.name;
    text.append(name, document.createElement("br"), formatMoney(product.price_fen));
    li.append(text);
    if (this.stream.status !== "ended") {
      const remove = label("button", "studio.products.remove", { name: product.name }, { type: "button", class: "danger" });
      remove.addEventListener("click", async () => {
        remove.disabled = true;
        try {
          await api("DELETE", `/api/streams/${this.stream.id}/products/${product.id}`);
          this.stream.products = this.stream.products.filter((p) => p.id !== product.id);
          this.draw();
          this.count.focus?.();
        } catch (error) {
          remove.disabled = false;
          this.alert.textContent = errorText(error);
          this.alert.hidden = false;
        }
      });
      li.append(remove);
    }
    return li;
  }

  addForm() {
    const form = document.createElement("form");
    form.className = "product-form";
    form.noValidate = true;
    form.setAttribute("aria-labelledby", "product-add-title");
    const zone = document.createElement("div");
    zone.className = "drop-zone";
    zone.id = "drop-zone";
    const zoneText = label("p", "studio.products.drop_here");
    const chosen = label("p", "studio.products.none_chosen", null, { class: "hint", id: "image-chosen", "aria-live": "polite" });
    const image = field("image", "studio.products.image", { type: "file", attrs: { accept: "image/jpeg,image/png,image/webp" } });
    const input = image.querySelector("input");
    const preview = document.createElement("img");
    preview.className = "thumb preview";
    preview.alt = "";
    preview.hidden = true;
    zone.append(zoneText, image, chosen, preview);
    const pick = (file) => {
      this.file = file || null;
      if (preview.src) URL.revokeObjectURL(preview.src);
      if (!file) {
        preview.hidden = true;
        chosen.textContent = t("studio.products.none_chosen");
        return;
      }
      preview.src = URL.createObjectURL(file);
      preview.hidden = false;
      chosen.textContent = t("studio.products.chosen", { name: file.name });
      const name = form.querySelector('[name="name"]');
      if (!name.value.trim()) name.value = file.name.replace(/\.[^.]+$/, "");
    };
    input.addEventListener("change", () => pick(input.files[0]));
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const file = [...(event.dataTransfer?.files || [])].find((f) => f.type.startsWith("image/"));
      if (!file) {
        localError(form, "image", "studio.products.not_an_image");
        return;
      }
      input.value = "";
      pick(file);
    });
    this.alert = formAlert();
    const add = label("button", "studio.products.add", null, { type: "submit", id: "product-add" });
    form.append(
      label("h3", "studio.products.add_title", null, { id: "product-add-title" }),
      field("name", "studio.products.name", { attrs: { maxlength: "120" } }),
      field("price_fen", "studio.products.price", { attrs: { inputmode: "decimal" }, hint: "studio.products.price_hint" }),
      field("description", "studio.products.description", { attrs: { maxlength: "1000" } }),
      zone,
      this.alert,
      add,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const fen = yuanToFen(form.querySelector('[name="price_fen"]').value);
      if (fen === null || Number.isNaN(fen)) return localError(form, "price_fen", "studio.products.price_invalid");
      const data = new FormData();
      data.set("name", form.querySelector('[name="name"]').value);
      data.set("price_fen", String(fen));
      const description = form.querySelector('[name="description"]').value;
      if (description) data.set("description", description);
      if (this.file) data.set("image", this.file, this.file.name);
      add.disabled = true;
      try {
        const product = await postProduct(this.stream.id, data);
        this.stream.products = [...this.stream.products, product];
        form.reset();
        pick(null);
        this.draw();
      } catch (error) {
        showError(form, error);
      } finally {
        add.disabled = this.stream.products.length >= MAX_PRODUCTS;
      }
    });
    this.form = form;
    return form;
  }
}
