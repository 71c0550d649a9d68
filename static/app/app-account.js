// The shopper's account: the sign-up form under the sign-in form, the consent screen (what is
// collected and for how long) and the settings (consent, erasure, language, and the account
// signed in: on a phone the header leaves its address out).
import { api, clearErrors, currentUser, errorText, formAlert, keepSession, showError } from "../js/api.js";
import { LANGUAGES, label, language, setLanguage, t } from "../js/i18n.js";

function field(form, name, type, key, autocomplete, required = true) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const input = document.createElement("input");
  Object.assign(input, { id: `sign-up-${name}`, name, type, required });
  input.setAttribute("autocomplete", autocomplete);
  wrap.append(label("label", key, null, { for: input.id }), input);
  form.append(wrap);
  return input;
}

/** Under the sign-in form: "New here? Create an account", which opens the sign-up form
 *  (POST /api/auth/signup makes a shopper and answers a session). */
export function signUpBox(box, done) {
  const open = label("button", "app.signup.open", null, { type: "button", id: "sign-up-open" });
  const intro = label("p", "app.signup.intro");
  const signIn = box.parentElement.querySelector("form.sign-in");
  box.classList.add("card", "sign-in");
  box.replaceChildren(intro, open);
  if (signIn) signIn.hidden = false;
  open.addEventListener("click", () => {
    // One form at a time: the sign-in form comes back with "I have an account".
    if (signIn) signIn.hidden = true;
    const back = label("button", "app.signup.back", null, { type: "button" });
    back.addEventListener("click", () => {
      signUpBox(box, done);
      signIn?.querySelector("input")?.focus();
    });
    const form = document.createElement("form");
    form.noValidate = true;
    form.setAttribute("aria-labelledby", "sign-up-title");
    form.append(label("h2", "app.signup.title", null, { id: "sign-up-title" }));
    field(form, "display_name", "text", "app.signup.name", "nickname", false);
    field(form, "email", "email", "auth.email", "email");
    const password = field(form, "password", "password", "auth.password", "new-password");
    password.minLength = 8;
    form.append(label("p", "app.signup.password_hint", null, { class: "hint" }));
    form.append(formAlert(), label("button", "app.signup.submit", null, { type: "submit" }));
    form.append(back);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const data = new FormData(form);
      const body = { email: data.get("email"), password: data.get("password") };
      if (data.get("display_name")) body.display_name = data.get("display_name");
      try {
        keepSession(await api("POST", "/api/auth/signup", body));
      } catch (error) {
        showError(form, error);
        return;
      }
      await done();
    });
    box.replaceChildren(form);
    form.querySelector("input").focus();
  });
}

/** The raw fixes' retention in hours (GET /api/location/fixes says the server's figure). */
async function retentionHours() {
  const { retention_s: seconds } = await api("GET", "/api/location/fixes");
  return Math.max(1, Math.round(seconds / 3600));
}

/** The consent screen: what is collected, for how long, who sees it; "Allow" grants it
 *  (PUT /api/me/consent) and calls `granted()`. */
export async function showConsent(view, granted) {
  const box = document.createElement("section");
  box.className = "card consent";
  box.setAttribute("aria-labelledby", "consent-title");
  const hours = await retentionHours();
  const list = document.createElement("ul");
  for (const key of ["app.consent.what", "app.consent.kept", "app.consent.stays", "app.consent.who"]) {
    list.append(label("li", key, { hours }));
  }
  const alert = formAlert();
  const grant = label("button", "app.consent.grant", null, { type: "button", id: "consent-grant", class: "primary" });
  grant.addEventListener("click", async () => {
    try {
      await api("PUT", "/api/me/consent", { location: true });
    } catch (error) {
      alert.textContent = errorText(error);
      alert.hidden = false;
      return;
    }
    await granted();
  });
  box.append(
    label("h2", "app.consent.title", null, { id: "consent-title", tabindex: "-1" }),
    label("p", "app.consent.intro"),
    list,
    label("p", "app.consent.withdraw"),
    alert,
    grant,
  );
  view.replaceChildren(box);
  box.querySelector("h2").focus();
}

/** Settings: location consent (withdraw or grant), the language, and erasing the account. */
export async function showSettings(view, { onConsent, onErased }) {
  const consent = await api("GET", "/api/me/consent");
  const hours = await retentionHours();

  const place = document.createElement("section");
  place.className = "card";
  place.setAttribute("aria-labelledby", "settings-location");
  const state = label("p", consent.location ? "app.settings.consent_on" : "app.settings.consent_off", { hours }, { id: "consent-state" });
  const toggle = label("button", consent.location ? "app.settings.withdraw" : "app.consent.grant", null, {
    type: "button",
    id: "consent-toggle",
  });
  const alert = formAlert();
  toggle.addEventListener("click", async () => {
    try {
      const next = await api("PUT", "/api/me/consent", { location: !consent.location });
      consent.location = next.location;
    } catch (error) {
      alert.textContent = errorText(error);
      alert.hidden = false;
      return;
    }
    await onConsent(consent.location);
    await showSettings(view, { onConsent, onErased });
    view.querySelector("#settings-status").textContent = t(
      consent.location ? "app.settings.granted" : "app.settings.withdrawn",
    );
  });
  place.append(label("h2", "app.settings.location", null, { id: "settings-location" }), state, alert, toggle);

  const lang = document.createElement("section");
  lang.className = "card";
  lang.setAttribute("aria-labelledby", "settings-language-title");
  const picker = document.createElement("select");
  picker.id = "settings-language";
  for (const [code, name] of Object.entries(LANGUAGES)) {
    const option = new Option(name, code, false, code === language());
    option.lang = code;
    picker.append(option);
  }
  picker.addEventListener("change", async () => {
    await setLanguage(picker.value);
    const header = document.getElementById("language");
    if (header) header.value = picker.value;
  });
  lang.append(
    label("h2", "app.settings.language", null, { id: "settings-language-title" }),
    label("label", "lang.label", null, { for: picker.id }),
    picker,
  );

  const erase = document.createElement("section");
  erase.className = "card danger-zone";
  erase.setAttribute("aria-labelledby", "settings-erase");
  const open = label("button", "app.settings.erase", null, { type: "button", id: "erase-open" });
  const dialog = document.createElement("dialog");
  dialog.setAttribute("aria-labelledby", "erase-title");
  const confirm = label("button", "app.settings.erase_confirm", null, { type: "button", id: "erase-confirm", class: "danger" });
  const cancel = label("button", "app.settings.erase_cancel", null, { type: "button" });
  const eraseAlert = formAlert();
  dialog.append(
    label("h2", "app.settings.erase_title", null, { id: "erase-title" }),
    label("p", "app.settings.erase_warning"),
    eraseAlert,
    Object.assign(document.createElement("div"), { className: "actions" }),
  );
  dialog.lastElementChild.append(cancel, confirm);
  open.addEventListener("click", () => {
    dialog.showModal();
    cancel.focus();
  });
  cancel.addEventListener("click", () => dialog.close());
  confirm.addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/me");
    } catch (error) {
      eraseAlert.textContent = errorText(error);
      eraseAlert.hidden = false;
      return;
    }
    dialog.close();
    keepSession(null);
    await onErased();
  });
  const account = label("p", "app.settings.signed_in", { email: currentUser()?.email ?? "" }, { id: "settings-account" });
  erase.append(label("h2", "app.settings.erase_heading", null, { id: "settings-erase" }), account, label("p", "app.settings.erase_text"), open, dialog);

  const status = document.createElement("p");
  status.id = "settings-status";
  status.setAttribute("role", "status");
  view.replaceChildren(status, place, lang, erase);
}

