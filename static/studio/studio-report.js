// After the show (#report/<id>): the stream's report from GET /api/streams/<id>/report (stats,
// polls, questions, drops) and its parts as CSV files, fetched with the bearer header (apiFile)
// and saved as downloads (saveFile): the token never goes into a URL.
import { api, apiFile, errorText, saveFile } from "../js/api.js";
import { formatTime, label, t } from "../js/i18n.js";

const ZONE = "Asia/Shanghai"; // streams have no zone of their own: the festival's
export const PARTS = ["stats", "comments", "polls", "questions", "drops"];
const STATS = ["peak_viewers", "joins", "comments", "likes", "positive", "negative"];

export async function show(view, ctx) {
  const [sid] = ctx.args;
  view.append(label("a", "studio.back_stream", null, { href: `#streams/${sid || ""}`, class: "back" }));
  let report;
  try {
    report = await api("GET", `/api/streams/${encodeURIComponent(sid)}/report`);
  } catch (error) {
    const key = error.code === "STREAM_NOT_ENDED" ? "studio.report.not_ended" : "studio.load_failed";
    view.append(label("p", key, { message: errorText(error) }, { role: "alert", class: "form-error", id: "report-error" }));
    return;
  }
  const stream = report.stream;
  const head = document.createElement("section");
  head.className = "card";
  head.setAttribute("aria-labelledby", "report-title");
  head.append(
    label("h2", "studio.report.title", { title: stream.title }, { id: "report-title" }),
    label("p", "studio.report.when", {
      start: stream.live_at ? formatTime(stream.live_at, ZONE) : "–",
      end: stream.ended_at ? formatTime(stream.ended_at, ZONE) : "–",
    }),
    downloads(sid),
  );
  view.append(head, stats(report.stats, report.comments), polls(report.polls), questions(report.questions), drops(report.drops));
}

function downloads(sid) {
  const box = document.createElement("div");
  box.className = "actions report-downloads";
  const alert = document.createElement("p");
  alert.id = "download-error";
  alert.className = "form-error";
  alert.setAttribute("role", "alert");
  alert.hidden = true;
  for (const part of PARTS) {
    const button = label("button", `studio.report.csv_${part}`, null, { type: "button", "data-part": part });
    button.addEventListener("click", async () => {
      alert.hidden = true;
      button.disabled = true;
      try {
        const response = await apiFile(`/api/streams/${encodeURIComponent(sid)}/report/${part}.csv`, "text/csv");
        saveFile(await response.blob(), `stream-${sid}-${part}.csv`);
      } catch (error) {
        alert.textContent = errorText(error);
        alert.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
    box.append(button);
  }
  const wrap = document.createElement("div");
  wrap.append(label("h3", "studio.report.downloads"), box, alert);
  return wrap;
}

function card(id, titleKey) {
  const section = document.createElement("section");
  section.className = "card";
  section.setAttribute("aria-labelledby", id);
  section.append(label("h2", titleKey, null, { id }));
  return section;
}

function table(id, captionKey, columns, rows, captionParams = null) {
  const el = document.createElement("table");
  el.id = id;
  el.append(label("caption", captionKey, captionParams));
  const head = el.createTHead().insertRow();
  for (const key of columns) head.append(label("th", key, null, { scope: "col" }));
  const body = el.createTBody();
  for (const cells of rows) {
    const tr = body.insertRow();
    cells.forEach((value, i) => {
      const cell = i === 0 ? document.createElement("th") : tr.insertCell();
      if (i === 0) {
        cell.scope = "row";
        tr.append(cell);
      }
      // A { key } cell is catalogue text, translated again when the language changes.
      if (value && typeof value === "object") {
        cell.dataset.i18n = value.key;
        cell.textContent = t(value.key);
      } else cell.textContent = value == null ? "–" : String(value);
    });
  }
  return el;
}

function stats(totals, comments) {
  const section = card("report-stats-title", "studio.report.stats");
  const rows = STATS.map((name) => [{ key: `studio.report.stat_${name}` }, totals[name] ?? 0]);
  rows.splice(1, 0, [{ key: "studio.report.stat_peak_at" }, totals.peak_at ? formatTime(totals.peak_at, ZONE) : null]);
  rows.push([{ key: "studio.report.stat_logged_comments" }, comments.count]);
  section.append(table("report-stats", "studio.report.stats", ["studio.report.col_name", "studio.report.col_value"], rows));
  return section;
}

function polls(list) {
  const section = card("report-polls-title", "studio.report.polls");
  if (!list.length) section.append(label("p", "studio.report.none", null, { class: "hint" }));
  list.forEach((poll, i) => {
    const rows = poll.options.map((option, j) => [option, poll.tallies[j] ?? 0]);
    section.append(table(`report-poll-${i}`, "studio.report.poll_caption", ["studio.polls.col_option", "studio.polls.col_votes"], rows, { question: poll.question }));
  });
  return section;
}

function questions(list) {
  const section = card("report-questions-title", "studio.report.questions");
  if (!list.length) section.append(label("p", "studio.report.none", null, { class: "hint" }));
  else {
    const rows = list.map((q) => [q.text, q.upvotes, { key: `studio.report.state_${q.state === "answered" ? "answered" : "open"}` }]);
    section.append(table("report-questions", "studio.report.questions", ["studio.report.col_question", "studio.report.col_upvotes", "studio.report.col_state"], rows));
  }
  return section;
}

function drops(list) {
  const section = card("report-drops-title", "studio.report.drops");
  if (!list.length) section.append(label("p", "studio.report.none", null, { class: "hint" }));
  else {
    const rows = list.map((d) => [d.title, d.quantity, d.claimed, d.winners, formatTime(d.starts_at, ZONE)]);
    section.append(table("report-drops", "studio.report.drops", ["studio.report.col_drop", "studio.report.col_quantity", "studio.report.col_claimed", "studio.report.col_winners", "studio.report.col_started"], rows));
  }
  return section;
}
