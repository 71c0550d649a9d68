// The console's live funnel (#funnel: pick a campaign; #funnel/<id>: watch it). The numbers
// come from the /marketer socket namespace: `watch` answers with the campaign's snapshot and
// the server pushes `funnel` whenever it changes (at most every FUNNEL_PUSH_S seconds), so no
// widget polls. Each chart has a table of the same numbers under a <details>; the heatmap's
// numbers are in the per-store table too (the map needs no mouse).
import { ApiError, api, apiFile, errorText, saveFile, token } from "../js/api.js";
import { formatMoney, formatTime, label, language, t } from "../js/i18n.js";
import { connect } from "../js/socket.js";
import { drawHeat, heatLegend } from "./funnel-map.js";
import { createMap, removeMap } from "./map.js";

const COLOURS = { visits: "#0b5cad", issued: "#b35c00", redeemed: "#1e7b34" };

/** Draw the view: the campaign list, or one campaign's live funnel. */
export async function show(view, ctx) {
  if (!ctx.args.length) return showCampaigns(view);
  return showFunnel(view, ctx.args[0]);
}

async function showCampaigns(view) {
  const section = document.createElement("section");
  section.className = "card funnel-pick";
  section.setAttribute("aria-labelledby", "funnel-pick-title");
  section.append(
    label("h2", "funnel.pick_title", null, { id: "funnel-pick-title" }),
    label("p", "funnel.pick_intro"),
  );
  view.append(section);
  let page;
  try {
    page = await api("GET", "/api/campaigns?limit=200");
  } catch (error) {
    section.append(alertOf(error));
    return;
  }
  if (!page.items.length) {
    section.append(label("p", "funnel.no_campaigns"));
    return;
  }
  const list = document.createElement("ul");
  list.className = "funnel-campaigns";
  for (const campaign of page.items) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#funnel/${encodeURIComponent(campaign.id)}`;
    link.textContent = campaign.name;
    const status = label("span", `funnel.status.${campaign.status}`);
    status.className = "funnel-status";
    item.append(link, " ", status);
    list.append(item);
  }
  section.append(list);
}

function alertOf(error) {
  const note = document.createElement("p");
  note.className = "form-error";
  note.setAttribute("role", "alert");
  note.textContent = errorText(error);
  return note;
}

/** One campaign's live funnel; returns the teardown (socket, charts, map). */
function showFunnel(view, cid) {
  const live = new LiveFunnel(view, cid);
  live.draw();
  return () => live.close();
}

class LiveFunnel {
  constructor(view, cid) {
    this.view = view;
    this.cid = cid;
    this.snapshot = null;
    this.charts = [];
    this.map = null;
    this.onLanguage = () => this.snapshot && this.render(this.snapshot, this.at);
  }

  draw() {
    const root = document.createElement("section");
    root.id = "funnel-live";
    root.className = "funnel-live";
    root.setAttribute("aria-labelledby", "funnel-title");
    const back = label("a", "funnel.back", null, { href: "#funnel" });
    back.className = "funnel-back";
    this.title = label("h2", "funnel.title_loading", null, { id: "funnel-title" });
    this.updated = label("p", "funnel.waiting", null, { id: "funnel-updated", class: "funnel-updated" });
    this.error = document.createElement("p");
    this.error.className = "form-error";
    this.error.setAttribute("role", "alert");
    this.error.hidden = true;

    this.steps = this.drawSteps();
    const byDay = this.drawGroup("day");
    const byStore = this.drawGroup("store");
    this.usage = document.createElement("section");
    this.usage.className = "card funnel-usage";
    this.usage.setAttribute("aria-labelledby", "funnel-usage-title");
    this.usageBody = document.createElement("div");
    this.usage.append(label("h3", "funnel.usage_title", null, { id: "funnel-usage-title" }), this.usageBody);

    const heat = document.createElement("section");
    heat.className = "card funnel-heat";
    heat.setAttribute("aria-labelledby", "funnel-heat-title");
    this.mapBox = document.createElement("div");
    this.mapBox.id = "funnel-map";
    this.mapBox.setAttribute("role", "region");
    this.mapBox.setAttribute("data-i18n-attr", "aria-label:funnel.map_label");
    this.mapBox.setAttribute("aria-label", t("funnel.map_label"));
    this.legend = document.createElement("div");
    this.legend.className = "funnel-legend";
    heat.append(label("h3", "funnel.heat_title", null, { id: "funnel-heat-title" }), this.mapBox, this.legend);

    root.append(back, this.title, this.updated, this.error, this.steps.box, byDay.box, byStore.box, this.usage, heat);
    this.groups = { day: byDay, store: byStore };
    this.view.append(root);
    this.root = root;
    document.addEventListener("languagechange", this.onLanguage);
    this.mapReady = createMap(this.mapBox).then((map) => {
      if (this.closed) removeMap(map);
      else this.map = map;
      return map;
    });
    this.openSocket();
  }

  openSocket() {
    const socket = connect("/marketer");
    this.socket = socket;
    // For tests and the curious: the socket.io-client socket of this view.
    this.root.funnelSocket = socket;
    // Rooms belong to a connection: (re)connecting watches again and gets a fresh snapshot.
    socket.on("connect", () => {
      socket.emit("watch", { campaign_id: this.cid }, (ack) => {
        if (ack && ack.error) return this.fail(new ApiError(0, ack.error));
        this.error.hidden = true;
        this.render(ack.snapshot, ack.at);
      });
    });
    socket.on("funnel", (snapshot) => this.render(snapshot, snapshot.at));
    socket.on("connect_error", (error) => {
      if (error && error.data && error.data.error) this.fail(new ApiError(0, error.data.error));
    });
  }

  fail(error) {
    this.error.textContent = errorText(error);
    this.error.hidden = false;
  }

  close() {
    this.closed = true;
    document.removeEventListener("languagechange", this.onLanguage);
    if (this.socket) this.socket.close();
    for (const chart of this.charts) chart.destroy();
    if (this.map) removeMap(this.map);
  }

  drawSteps() {
    const box = document.createElement("section");
    box.className = "card funnel-steps";
    box.setAttribute("aria-labelledby", "funnel-steps-title");
    const list = document.createElement("ol");
    const step = (key, id) => {
      const item = document.createElement("li");
      const value = document.createElement("span");
      value.className = "funnel-number";
      value.id = id;
      value.textContent = "–";
      item.append(label("span", key, null, { class: "funnel-step-name" }), value);
      list.append(item);
      return value;
    };
    const visits = step("funnel.visits", "funnel-visits");
    const issued = step("funnel.issued", "funnel-issued");
    const redeemed = step("funnel.redeemed", "funnel-redeemed");
    const rates = document.createElement("p");
    rates.className = "funnel-rates";
    box.append(label("h3", "funnel.steps_title", null, { id: "funnel-steps-title" }), list, rates);
    return { box, visits, issued, redeemed, rates };
  }

  /** A section with a chart (role img), its table under <details> and a CSV button. */
  drawGroup(group) {
    const box = document.createElement("section");
    box.className = "card funnel-group";
    box.id = `funnel-by-${group}`;
    box.setAttribute("aria-labelledby", `funnel-${group}-title`);
    const titleKey = group === "day" ? "funnel.by_day" : "funnel.by_store";
    const chartKey = group === "day" ? "funnel.chart_day" : "funnel.chart_store";
    const frame = document.createElement("div");
    frame.className = "funnel-chart";
    const canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("data-i18n-attr", `aria-label:${chartKey}`);
    canvas.setAttribute("aria-label", t(chartKey));
    frame.append(canvas);
    const details = document.createElement("details");
    const table = document.createElement("div");
    table.className = "table-wrap";
    table.tabIndex = 0; // a wide table scrolls sideways with the keyboard too
    table.setAttribute("role", "region");
    table.setAttribute("aria-labelledby", `funnel-${group}-title`);
    details.append(label("summary", "funnel.table"), table);
    const csvKey = group === "day" ? "funnel.csv_day" : "funnel.csv_store";
    const button = label("button", csvKey, null, { type: "button", id: `funnel-csv-${group}` });
    const note = document.createElement("p");
    note.className = "form-error";
    note.setAttribute("role", "alert");
    note.hidden = true;
    button.addEventListener("click", () => this.download(group, note));
    // Per store: the snapshot holds the most visited stores only (FUNNEL_TOP_STORES); the
    // CSV has them all, and this line says how many are shown.
    const shown = document.createElement("p");
    shown.className = "funnel-shown";
    shown.id = `funnel-shown-${group}`;
    shown.hidden = true;
    box.append(label("h3", titleKey, null, { id: `funnel-${group}-title` }), shown, frame, details, button, note);
    return { box, canvas, table, shown, chart: null };
  }

  /** Fetch the CSV of a group with the tab's token and hand it to the browser as a file. */
  async download(group, note) {
    note.hidden = true;
    const path = `/api/campaigns/${encodeURIComponent(this.cid)}/analytics.csv?group=${group}`;
    try {
      const response = await apiFile(path, "text/csv");
      saveFile(await response.blob(), `campaign-${this.cid}-by-${group}.csv`);
    } catch (error) {
      note.textContent = errorText(error);
      note.hidden = false;
    }
  }

  render(snapshot, at) {
    this.snapshot = snapshot;
    this.at = at;
    const zone = snapshot.timezone;
    this.title.dataset.i18n = "funnel.title";
    this.title.dataset.i18nParams = JSON.stringify({ name: snapshot.name });
    this.title.textContent = t("funnel.title", { name: snapshot.name });
    const when = formatTime(at, zone, { dateStyle: "medium", timeStyle: "medium" });
    this.updated.dataset.i18n = "funnel.updated";
    this.updated.dataset.i18nParams = JSON.stringify({ time: when });
    this.updated.textContent = t("funnel.updated", { time: when });

    const f = snapshot.funnel;
    this.steps.visits.textContent = number(f.visits);
    this.steps.issued.textContent = number(f.coupons);
    this.steps.redeemed.textContent = number(f.redeemed);
    this.steps.rates.textContent = [
      t("funnel.visitors", { count: number(f.visitors) }),
      t("funnel.rate_visit", { rate: percent(f.visit_to_coupon) }),
      t("funnel.rate_redeem", { rate: percent(f.coupon_to_redemption) }),
    ].join(" · ");

    this.renderGroup("day", snapshot.days.map((g) => ({ key: g.day, name: g.day, ...g })));
    this.renderGroup(
      "store",
      snapshot.stores.map((g) => ({ key: g.store, name: g.name || g.store || t("funnel.no_store"), ...g })),
    );
    const shown = this.groups.store.shown;
    const total = snapshot.stores_total ?? snapshot.stores.length;
    shown.hidden = total <= snapshot.stores.length;
    shown.dataset.i18n = "funnel.top_stores";
    shown.dataset.i18nParams = JSON.stringify({ shown: snapshot.stores.length, total });
    shown.textContent = t("funnel.top_stores", { shown: snapshot.stores.length, total });
    this.renderUsage(snapshot.usage);
    this.renderHeat(snapshot.heatmap);
  }

  renderGroup(group, rows) {
    const part = this.groups[group];
    const labels = rows.map((r) => r.name);
    const series = [
      ["visits", t("funnel.visits"), rows.map((r) => r.visits_enter + r.visits_dwell)],
      ["issued", t("funnel.issued"), rows.map((r) => r.issued - r.voided)],
      ["redeemed", t("funnel.redeemed"), rows.map((r) => r.redeemed)],
    ];
    const datasets = series.map(([name, text, data]) => ({
      label: text,
      data,
      backgroundColor: COLOURS[name],
    }));
    if (!part.chart) {
      part.chart = new window.Chart(part.canvas, {
        type: "bar",
        data: { labels, datasets },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      });
      this.charts.push(part.chart);
    } else {
      part.chart.data.labels = labels;
      part.chart.data.datasets = datasets;
      part.chart.update();
    }

    if (!rows.length) {
      part.table.replaceChildren(label("p", "funnel.no_data"));
      return;
    }
    const table = document.createElement("table");
    table.id = `funnel-table-${group}`;
    const caption = label("caption", group === "day" ? "funnel.chart_day" : "funnel.chart_store");
    const head = document.createElement("tr");
    const first = group === "day" ? "funnel.col_day" : "funnel.col_store";
    for (const key of [first, "funnel.visits", "funnel.issued", "funnel.redeemed", "funnel.col_rate"]) {
      head.append(label("th", key, null, { scope: "col" }));
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    rows.forEach((row, i) => {
      const tr = document.createElement("tr");
      tr.dataset.key = row.key;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = row.name;
      tr.append(th);
      for (const value of [series[0][2][i], series[1][2][i], series[2][2][i]]) {
        const td = document.createElement("td");
        td.textContent = number(value);
        tr.append(td);
      }
      const rate = document.createElement("td");
      rate.textContent = percent(row.redemption_rate);
      tr.append(rate);
      tbody.append(tr);
    });
    table.append(caption, thead, tbody);
    part.table.replaceChildren(table);
  }

  /** Cap and budget usage: a labelled <progress> per capped counter, the count alone when
   *  there is no cap. */
  renderUsage(usage) {
    let n = 0;
    const meter = (text, used, cap) => {
      const wrap = document.createElement("div");
      wrap.className = "funnel-meter";
      if (cap === null || cap === undefined) {
        const plain = document.createElement("p");
        plain.textContent = text;
        wrap.append(plain);
        return wrap;
      }
      const bar = document.createElement("progress");
      bar.id = `funnel-usage-${++n}`;
      bar.max = Math.max(cap, 1);
      bar.value = Math.min(used, bar.max);
      const caption = document.createElement("label");
      caption.htmlFor = bar.id;
      caption.textContent = text;
      wrap.append(caption, bar);
      return wrap;
    };
    const count = ({ used, cap }) =>
      meter(
        cap === null ? t("funnel.usage_count_nocap", { used: number(used) })
          : t("funnel.usage_count", { used: number(used), cap: number(cap) }),
        used,
        cap,
      );
    const money = ({ used, cap }) =>
      meter(
        cap === null ? t("funnel.usage_value_nocap", { used: formatMoney(used) })
          : t("funnel.usage_value", { used: formatMoney(used), cap: formatMoney(cap) }),
        used,
        cap,
      );
    const block = (titleText, meters) => {
      const box = document.createElement("div");
      box.className = "funnel-usage-block";
      const heading = document.createElement("h4");
      heading.textContent = titleText;
      box.append(heading, ...meters);
      return box;
    };
    const parts = [block(t("funnel.usage_campaign"), [count(usage.campaign.total), money(usage.campaign.value_fen)])];
    for (const offer of usage.offers) {
      const meters = [count(offer.total), money(offer.value_fen)];
      const perStore = offer.per_store_day;
      if (perStore.cap !== null) {
        if (!perStore.stores.length) {
          meters.push(meter(t("funnel.usage_store_day_none", { day: usage.day, cap: number(perStore.cap) }), 0, null));
        }
        for (const store of perStore.stores.slice(0, 5)) {
          const text = t("funnel.usage_store_day", {
            store: store.name || store.store_id,
            day: usage.day,
            used: number(store.used),
            cap: number(perStore.cap),
          });
          meters.push(meter(text, store.used, perStore.cap));
        }
      }
      if (offer.per_shopper !== null) {
        meters.push(meter(t("funnel.usage_per_shopper", { cap: number(offer.per_shopper) }), 0, null));
      }
      parts.push(block(t("funnel.usage_offer", { name: offer.name }), meters));
    }
    this.usageBody.replaceChildren(...parts);
  }

  async renderHeat(heat) {
    const map = await this.mapReady;
    if (this.closed) return;
    const max = drawHeat(map, heat, this);
    this.legend.replaceChildren(heatLegend(max));
  }
}

function number(value) {
  return new Intl.NumberFormat(language()).format(value);
}

function percent(rate) {
  if (rate === null || rate === undefined) return t("funnel.rate_none");
  return new Intl.NumberFormat(language(), { style: "percent", maximumFractionDigits: 1 }).format(rate);
}
