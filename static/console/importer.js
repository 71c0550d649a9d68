// Bulk import of stores (POST /api/stores/import): a CSV or GeoJSON file, "all or nothing"
// (default) or "good rows only" (partial=true), a progress bar while the file uploads
// (XMLHttpRequest upload progress) and then while the server checks the rows, and the answer:
// received / written counts and the per-row error table (line or feature, field, reason).
import { ApiError, clearErrors, showError, token } from "../js/api.js";
import { label, t } from "../js/i18n.js";
import { tableWrap } from "./stores-page.js";

const SHOWN_ERRORS = 200;

/** The import form; `onImported(report)` runs after stores were written. */
export function importForm({ onImported }) {
  const form = document.createElement("form");
  form.id = "stores-import";
  form.noValidate = true;

  const fileWrap = document.createElement("div");
  fileWrap.className = "field";
  const file = document.createElement("input");
  Object.assign(file, { type: "file", id: "stores-import-file", name: "file" });
  file.accept = ".csv,.geojson,.json,text/csv,application/geo+json,application/json";
  fileWrap.append(label("label", "stores.import.file", null, { for: file.id }), file);
  const help = label("p", "stores.import.help", null, { class: "hint", id: "stores-import-help" });
  file.setAttribute("aria-describedby", help.id);

  const mode = document.createElement("fieldset");
  mode.append(label("legend", "stores.import.mode"));
  for (const [value, key, checked] of [
    ["all", "stores.import.all_or_nothing", true],
    ["partial", "stores.import.good_rows", false],
  ]) {
    const wrap = document.createElement("div");
    wrap.className = "radio";
    const radio = document.createElement("input");
    Object.assign(radio, { type: "radio", name: "mode", value, id: `stores-import-${value}`, checked });
    wrap.append(radio, label("label", key, null, { for: radio.id }));
    mode.append(wrap);
  }

  const submit = label("button", "stores.import.upload", null, { type: "submit" });
  const alert = document.createElement("p");
  alert.className = "form-error";
  alert.setAttribute("role", "alert");
  alert.dataset.formError = "";
  alert.hidden = true;

  const progressWrap = document.createElement("div");
  progressWrap.className = "import-progress";
  progressWrap.hidden = true;
  const progress = document.createElement("progress");
  progress.id = "stores-import-progress";
  progress.max = 100;
  const progressLabel = document.createElement("label");
  progressLabel.htmlFor = progress.id;
  progressLabel.id = "stores-import-progress-label";
  progressWrap.append(progressLabel, progress);

  const result = document.createElement("div");
  result.id = "stores-import-result";
  result.setAttribute("aria-live", "polite");

  form.append(fileWrap, help, mode, submit, alert, progressWrap, result);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    result.replaceChildren();
    const chosen = file.files[0];
    if (!chosen) {
      showError(form, new ApiError(0, { message: t("stores.import.no_file"), field: "file" }));
      return;
    }
    const partial = form.elements.mode.value === "partial";
    submit.disabled = true;
    progressWrap.hidden = false;
    try {
      const { status, body } = await upload(chosen, partial, (phase, percent) => {
        if (phase === "upload") {
          progress.value = percent;
          progressLabel.textContent = t("stores.import.uploading", { percent });
        } else {
          progress.removeAttribute("value"); // indeterminate: the server checks the rows
          progressLabel.textContent = t("stores.import.checking");
        }
      });
      if (body && "received" in body && Array.isArray(body.errors)) {
        result.append(report(body, status));
        if (body.written > 0 && onImported) await onImported(body);
      } else {
        showError(form, new ApiError(status, (body && body.error) || { message: t("error.http", { status }) }));
      }
    } catch (error) {
      showError(form, error);
    } finally {
      submit.disabled = false;
      progressWrap.hidden = true;
    }
  });
  return form;
}

/** Send the file; resolve with the answer's status and JSON body. */
function upload(chosen, partial, onPhase) {
  const geojson = /\.(geo)?json$/i.test(chosen.name) || /json/.test(chosen.type);
  const query = new URLSearchParams({ partial: String(partial), format: geojson ? "geojson" : "csv" });
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/stores/import?${query}`);
    xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Content-Type", geojson ? "application/geo+json" : "text/csv");
    xhr.responseType = "json";
    onPhase("upload", 0);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onPhase("upload", Math.round((100 * event.loaded) / event.total));
    });
    xhr.upload.addEventListener("load", () => onPhase("check"));
    xhr.addEventListener("load", () => resolve({ status: xhr.status, body: xhr.response }));
    xhr.addEventListener("error", () =>
      reject(new ApiError(0, { code: "network_error", message: t("error.network") })),
    );
    xhr.send(chosen);
  });
}

/** A cell saying where a bad row is, in the reader's language (kept translated): "line 7" or
 *  "features[3]" from the API. */
function where(at) {
  let match = /^line (\d+)$/.exec(at);
  if (match) return label("td", "stores.import.at_line", { line: match[1] });
  match = /^features\[(\d+)\]$/.exec(at);
  if (match) return label("td", "stores.import.at_feature", { index: match[1] });
  const td = document.createElement("td");
  td.textContent = at;
  return td;
}

function report(body, status) {
  const box = document.createElement("div");
  box.className = status === 201 ? "import-report ok" : "import-report rejected";
  const heading = label("h4", status === 201 ? "stores.import.done" : "stores.import.rejected");
  const counts = label("p", "stores.import.counts", {
    received: body.received,
    written: body.written,
    rejected: body.rejected,
  });
  counts.className = "import-counts";
  box.append(heading, counts);
  if (!body.errors.length) return box;
  if (status !== 201) box.append(label("p", "stores.import.nothing_written", null, { role: "alert" }));
  const wrap = tableWrap("stores.import.bad_rows");
  const table = document.createElement("table");
  table.id = "stores-import-errors";
  const caption = label("caption", "stores.import.errors_caption", { count: body.errors.length });
  const head = document.createElement("tr");
  for (const key of ["stores.import.col_at", "stores.import.col_field", "stores.import.col_reason"]) {
    head.append(label("th", key, null, { scope: "col" }));
  }
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  for (const row of body.errors.slice(0, SHOWN_ERRORS)) {
    const tr = document.createElement("tr");
    tr.dataset.at = row.at;
    tr.append(where(row.at));
    for (const text of [row.field || "—", row.reason]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tbody.append(tr);
  }
  table.append(caption, thead, tbody);
  wrap.append(table);
  box.append(wrap);
  if (body.errors.length > SHOWN_ERRORS) {
    box.append(label("p", "stores.import.more_errors", { count: body.errors.length - SHOWN_ERRORS }));
  }
  return box;
}
