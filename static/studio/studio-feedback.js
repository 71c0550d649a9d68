// Live feedback on the live screen, from the server's `feedback` (every 2 s while live): viewers
// now and peak, comments and likes per minute as Chart.js charts over the show (window.Chart,
// a classic script) with a table of the same numbers, sentiment, top words, and alerts.
//
// The series start when the console opens (the server keeps per-minute counts for the current
// and the last full minute only): each feedback sets the current minute's comments and likes,
// and the last full minute's final counts; a minute's viewers are the most seen in it.
//
// Alerts (role="alert"):
// - viewers drop sharply: viewers now are at least SHARP_DROP (30 %) below the most seen in the
//   last DROP_WINDOW_S (60 s) of feedback, and that most was at least DROP_MIN_VIEWERS (5);
// - sentiment turns negative: in the feedback's window (5 minutes) negative comments outnumber
//   positive ones and there are at least NEGATIVE_MIN (3) of them.
// Each alert shows while its condition holds.
import { label, t } from "../js/i18n.js";

export const SHARP_DROP = 0.3;
export const DROP_WINDOW_S = 60;
export const DROP_MIN_VIEWERS = 5;
export const NEGATIVE_MIN = 3;
const MAX_MINUTES = 240;
const ZONE = "Asia/Shanghai"; // streams have no zone of their own: the festival's
const COLOURS = { viewers: "#1f5fa8", comments: "#b35c00", likes: "#b3261e" };

export class Feedback {
  constructor() {
    this.minutes = new Map(); // minute start (unix s) -> {viewers, comments, likes}
    this.samples = []; // [at, viewers] of the last DROP_WINDOW_S
    this.charts = {};
    const section = (this.element = document.createElement("section"));
    section.className = "card feedback";
    section.setAttribute("aria-labelledby", "feedback-title");
    this.dropAlert = alertLine("feedback-drop-alert");
    this.moodAlert = alertLine("feedback-mood-alert");
    this.now = label("p", "studio.feedback.now", { now: 0, peak: 0 }, { id: "feedback-now", class: "feedback-now" });
    this.sentiment = label("p", "studio.feedback.sentiment", { positive: 0, negative: 0 }, { id: "feedback-sentiment" });
    this.words = document.createElement("ol");
    this.words.id = "top-words";
    this.words.setAttribute("aria-labelledby", "top-words-title");
    this.noWords = label("p", "studio.feedback.no_words", null, { class: "hint" });
    const charts = document.createElement("div");
    charts.className = "feedback-charts";
    for (const name of ["viewers", "comments", "likes"]) {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      canvas.id = `chart-${name}`;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", t(`studio.feedback.chart_${name}`, { value: 0 }));
      const box = document.createElement("div");
      box.className = "chart-box";
      box.append(canvas);
      figure.append(box, label("figcaption", `studio.feedback.title_${name}`));
      charts.append(figure);
      this.charts[name] = { canvas, chart: null };
    }
    this.table = document.createElement("table");
    this.table.id = "feedback-table";
    this.table.append(label("caption", "studio.feedback.table_caption"));
    const head = this.table.createTHead().insertRow();
    for (const key of ["col_minute", "col_viewers", "col_comments", "col_likes"]) {
      head.append(label("th", `studio.feedback.${key}`, null, { scope: "col" }));
    }
    this.body = this.table.createTBody();
    section.append(
      label("h2", "studio.feedback.title", null, { id: "feedback-title" }),
      this.dropAlert,
      this.moodAlert,
      this.now,
      this.sentiment,
      label("h3", "studio.feedback.top_words", null, { id: "top-words-title" }),
      this.noWords,
      this.words,
      charts,
      this.table,
    );
  }

  close() {
    for (const part of Object.values(this.charts)) part.chart?.destroy();
  }

  /** One feedback payload (docs/events.md, "The feedback payload"). */
  update(feedback) {
    const minute = feedback.minute || {};
    if (minute.current_started_at != null) {
      const row = this.row(minute.current_started_at);
      row.comments = feedback.comments_per_min.current;
      row.likes = feedback.likes_per_min.current;
      row.viewers = Math.max(row.viewers ?? 0, feedback.viewers);
    }
    // The last full minute too, even when no feedback arrived during it (the console opened
    // or the feedback came late near its end): its comments and likes are not lost.
    if (minute.last_full_started_at != null) {
      const row = this.row(minute.last_full_started_at);
      row.comments = feedback.comments_per_min.last_full;
      row.likes = feedback.likes_per_min.last_full;
    }
    setText(this.now, "studio.feedback.now", { now: feedback.viewers, peak: feedback.peak_viewers });
    const mood = feedback.sentiment || { positive: 0, negative: 0 };
    setText(this.sentiment, "studio.feedback.sentiment", { positive: mood.positive, negative: mood.negative });
    this.drawWords(feedback.top_words || []);
    this.drawSeries(feedback);
    this.checkAlerts(feedback, mood);
  }

  row(start) {
    if (!this.minutes.has(start)) {
      this.minutes.set(start, { viewers: null, comments: 0, likes: 0 });
      const oldest = [...this.minutes.keys()].sort((a, b) => a - b);
      while (oldest.length > MAX_MINUTES) this.minutes.delete(oldest.shift());
    }
    return this.minutes.get(start);
  }

  drawWords(words) {
    this.noWords.hidden = words.length > 0;
    const items = words.map(([word, count]) => {
      const li = document.createElement("li");
      li.dataset.word = word;
      li.textContent = t("studio.feedback.word", { word, count });
      return li;
    });
    const same = items.length === this.words.children.length && items.every((li, i) => li.textContent === this.words.children[i].textContent);
    if (!same) this.words.replaceChildren(...items);
  }

  drawSeries(feedback) {
    const starts = [...this.minutes.keys()].sort((a, b) => a - b);
    const labels = starts.map((s) => minuteText(s));
    const rows = starts.map((s) => this.minutes.get(s));
    const data = {
      viewers: rows.map((r) => r.viewers ?? 0),
      comments: rows.map((r) => r.comments),
      likes: rows.map((r) => r.likes),
    };
    const values = {
      viewers: feedback.viewers,
      comments: feedback.comments_per_min.current,
      likes: feedback.likes_per_min.current,
    };
    for (const [name, part] of Object.entries(this.charts)) {
      part.canvas.setAttribute("aria-label", t(`studio.feedback.chart_${name}`, { value: values[name] }));
      if (!window.Chart) continue; // the table below carries the same numbers
      if (!part.chart) {
        part.chart = new window.Chart(part.canvas, {
          type: name === "viewers" ? "line" : "bar",
          data: { labels, datasets: [{ label: t(`studio.feedback.title_${name}`), data: data[name], backgroundColor: COLOURS[name], borderColor: COLOURS[name] }] },
          options: {
            animation: false,
            responsive: true,
            maintainAspectRatio: false,
            plugins: { legend: { display: false } },
            scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
          },
        });
      } else {
        part.chart.data.labels = labels;
        part.chart.data.datasets[0].data = data[name];
        part.chart.data.datasets[0].label = t(`studio.feedback.title_${name}`);
        part.chart.update("none");
      }
    }
    const body = document.createElement("tbody");
    starts.forEach((start, i) => {
      const tr = body.insertRow();
      tr.dataset.minute = String(start);
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = labels[i];
      tr.append(th);
      for (const key of ["viewers", "comments", "likes"]) {
        const cell = tr.insertCell();
        cell.dataset.col = key;
        cell.textContent = rows[i][key] == null ? "–" : String(rows[i][key]);
      }
    });
    if (body.innerHTML !== this.body.innerHTML) {
      this.body.replaceWith(body);
      this.body = body;
    }
  }

  checkAlerts(feedback, mood) {
    const at = feedback.at;
    this.samples.push([at, feedback.viewers]);
    this.samples = this.samples.filter(([when]) => when >= at - DROP_WINDOW_S);
    const most = Math.max(...this.samples.map(([, n]) => n));
    const sharp = most >= DROP_MIN_VIEWERS && feedback.viewers <= most * (1 - SHARP_DROP);
    toggle(this.dropAlert, sharp, "studio.feedback.alert_drop", { from: most, to: feedback.viewers });
    const negative = mood.negative >= NEGATIVE_MIN && mood.negative > mood.positive;
    toggle(this.moodAlert, negative, "studio.feedback.alert_negative", { positive: mood.positive, negative: mood.negative });
  }
}

function alertLine(id) {
  const p = document.createElement("p");
  p.id = id;
  p.className = "form-error feedback-alert";
  p.setAttribute("role", "alert");
  p.hidden = true;
  return p;
}

function toggle(element, on, key, params) {
  if (on) setText(element, key, params);
  element.hidden = !on;
}

function minuteText(start) {
  return new Intl.DateTimeFormat(document.documentElement.lang || "en", { hour: "2-digit", minute: "2-digit", timeZone: ZONE }).format(new Date(start * 1000));
}

function setText(element, key, params) {
  const text = t(key, params);
  element.dataset.i18n = key;
  element.dataset.i18nParams = JSON.stringify(params);
  if (element.textContent !== text) element.textContent = text;
}
