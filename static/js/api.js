// Calls to Footfall's REST API with the tab's token, and the API's error envelope
// {"error": {"code", "message", "field"}} shown next to the field it names.
import { has, t } from "./i18n.js";

const TOKEN = "footfall.token";
const USER = "footfall.user";

/** An answer other than 2xx, carrying the envelope's code, message and field. */
export class ApiError extends Error {
  constructor(status, { code = "http_error", message = "", field = null, details = null } = {}) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.field = field;
    this.details = details;
  }
}

/** Return the token of this tab (sessionStorage: gone when the tab closes), or null. */
export function token() {
  return sessionStorage.getItem(TOKEN);
}

/** Return the signed-in user of this tab, or null. */
export function currentUser() {
  const user = sessionStorage.getItem(USER);
  return user ? JSON.parse(user) : null;
}

/** Keep a session (token and user) for this tab only; null forgets it. */
export function keepSession(session) {
  if (session) {
    sessionStorage.setItem(TOKEN, session.token);
    sessionStorage.setItem(USER, JSON.stringify(session.user));
  } else {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  }
}

/** Call the API; resolve with the JSON body, or reject with an ApiError. The token goes in
 *  the Authorization header, never in the URL. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { code: "network_error", message: t("error.network") });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || { message: t("error.http", { status: response.status }) };
    throw new ApiError(response.status, error);
  }
  return data;
}

/** Fetch a file from the API (a CSV, GeoJSON, an image) with the tab's token in the
 *  Authorization header, never in the URL; resolve with the Response, or reject with an
 *  ApiError carrying the envelope. */
export async function apiFile(path, accept = "*/*") {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: accept, Authorization: `Bearer ${token()}` } });
  } catch {
    throw new ApiError(0, { code: "network_error", message: t("error.network") });
  }
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    const error = (data && data.error) || { message: t("error.http", { status: response.status }) };
    throw new ApiError(response.status, error);
  }
  return response;
}

/** Save a Blob as a download named `filename`: an object URL on a clicked <a download>. */
export function saveFile(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The form's alert for errors that name no input (showError and clearErrors use it). */
export function formAlert() {
  const alert = document.createElement("p");
  alert.className = "form-error";
  alert.dataset.formError = "";
  alert.setAttribute("role", "alert");
  alert.hidden = true;
  return alert;
}

/** Remove the error messages showError put into a form. */
export function clearErrors(form) {
  for (const el of form.querySelectorAll("[data-error-for]")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const general = form.querySelector("[data-form-error]");
  if (general) {
    general.textContent = "";
    general.hidden = true;
  }
}

/** Return an API error's text for the reader: the catalogue's `error.<code>` when it has one
 *  (the API's messages are English), else the envelope's message. */
export function errorText(error) {
  if (error.code && has(`error.${error.code}`)) return t(`error.${error.code}`);
  return error.message || t("error.unknown");
}

/** Show an API error in a form: next to the input its field names (the input gets
 *  aria-invalid and aria-describedby), else in the form's [data-form-error] alert. */
export function showError(form, error) {
  clearErrors(form);
  const message = errorText(error);
  const input = error.field ? form.querySelector(`[name="${CSS.escape(error.field)}"]`) : null;
  if (input) {
    const note = document.createElement("p");
    note.className = "field-error";
    note.id = `${input.id || input.name}-error`;
    note.dataset.errorFor = error.field;
    note.textContent = message;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    input.insertAdjacentElement("afterend", note);
    input.focus();
    return;
  }
  const general = form.querySelector("[data-form-error]");
  general.textContent = message;
  general.hidden = false;
}
