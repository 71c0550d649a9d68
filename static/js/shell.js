// The frame every console page shares: a header with the page's name, the language switch and
// sign-out; a sign-in form; the notice for a signed-in user without the page's role; and the
// page itself, drawn by the page's own module once the user may see it.
import { ApiError, api, clearErrors, currentUser, keepSession, showError, token } from "./api.js";
import { LANGUAGES, initialLanguage, label, language, setLanguage, t } from "./i18n.js";

/** Start a page: `roles` may see it; `render(main, user)` draws it for them. A page that lets
 *  new users in passes `signInExtra(box, done)`: called under the sign-in form with a box to
 *  fill (e.g. a sign-up form) and `done`, to call once it kept a new session. */
export async function startPage({ titleKey, roles, render, signInExtra = null }) {
  await setLanguage(initialLanguage(), { remember: false });
  const frame = buildFrame(titleKey);
  document.body.replaceChildren(frame.skip, frame.header, frame.main);
  const show = async () => {
    const user = await checkedUser();
    if (!user) return showSignIn(frame, roles, show, signInExtra);
    frame.who.replaceChildren(
      label("span", "auth.signed_in_as", { email: user.email, role: { key: `role.${user.role}` } }),
    );
    frame.signOut.hidden = false;
    if (!roles.includes(user.role)) return showRefused(frame, roles, user, show);
    frame.main.replaceChildren(label("h2", titleKey, null, { class: "visually-hidden" }));
    await render(frame.main, user);
  };
  frame.signOut.addEventListener("click", async () => {
    await signOut();
    frame.status.textContent = t("auth.signed_out");
    await show();
  });
  document.addEventListener("languagechange", () => {
    document.title = t(titleKey);
  });
  document.title = t(titleKey);
  await show();
}

/** Return the tab's user after asking the API that its token still works, or null. */
async function checkedUser() {
  if (!token()) return null;
  try {
    const user = await api("GET", "/api/me");
    keepSession({ token: token(), user });
    return user;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      keepSession(null);
      return null;
    }
    return currentUser();
  }
}

/** Revoke the tab's token on the server, then forget it here (also when the server refuses). */
export async function signOut() {
  try {
    await api("POST", "/api/auth/logout");
  } catch {
    // An expired or revoked token is signed out already.
  }
  keepSession(null);
}

function buildFrame(titleKey) {
  const skip = label("a", "nav.skip", null, { href: "#main", class: "skip-link" });
  const header = document.createElement("header");
  header.className = "bar";
  const heading = label("h1", titleKey);
  const tools = document.createElement("div");
  tools.className = "bar-tools";

  const picker = document.createElement("select");
  picker.id = "language";
  picker.setAttribute("autocomplete", "off");
  for (const [code, name] of Object.entries(LANGUAGES)) {
    const option = new Option(name, code, false, code === language());
    option.lang = code;
    picker.append(option);
  }
  picker.addEventListener("change", () => setLanguage(picker.value));
  const pickerLabel = label("label", "lang.label", null, { for: "language" });

  const who = document.createElement("span");
  who.className = "who";
  const signOut = label("button", "auth.sign_out", null, { type: "button", id: "sign-out" });
  signOut.hidden = true;
  const status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  tools.append(pickerLabel, picker, who, signOut, status);
  header.append(heading, tools);

  const main = document.createElement("main");
  main.id = "main";
  main.tabIndex = -1;
  return { skip, header, main, who, signOut, status };
}

function showSignIn(frame, roles, done, extra = null) {
  frame.who.replaceChildren();
  frame.signOut.hidden = true;
  const form = document.createElement("form");
  form.className = "card sign-in";
  form.noValidate = true;
  const field = (name, type, key, autocomplete) => {
    const wrap = document.createElement("div");
    wrap.className = "field";
    const input = document.createElement("input");
    Object.assign(input, { id: `sign-in-${name}`, name, type, required: true });
    input.setAttribute("autocomplete", autocomplete);
    wrap.append(label("label", key, null, { for: input.id }), input);
    return wrap;
  };
  const alert = document.createElement("p");
  alert.className = "form-error";
  alert.dataset.formError = "";
  alert.setAttribute("role", "alert");
  alert.hidden = true;
  form.append(
    label("h2", "auth.sign_in_title"),
    label("p", "auth.sign_in_for", { roles: roleList(roles) }),
    field("email", "email", "auth.email", "username"),
    field("password", "password", "auth.password", "current-password"),
    alert,
    label("button", "auth.sign_in", null, { type: "submit" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    try {
      const session = await api("POST", "/api/auth/login", {
        email: data.get("email"),
        password: data.get("password"),
      });
      keepSession(session);
    } catch (error) {
      showError(form, error);
      return;
    }
    await done();
    frame.main.focus();
  });
  frame.main.replaceChildren(form);
  if (extra) {
    const box = document.createElement("div");
    box.className = "sign-in-extra";
    frame.main.append(box);
    extra(box, async () => {
      await done();
      frame.main.focus();
    });
  }
}

function showRefused(frame, roles, user, done) {
  const box = document.createElement("section");
  box.className = "card refused";
  box.setAttribute("aria-labelledby", "refused-title");
  const again = label("button", "auth.switch_account", null, { type: "button" });
  again.addEventListener("click", async () => {
    await signOut();
    await done();
  });
  box.append(
    label("h2", "auth.refused_title", null, { id: "refused-title" }),
    label("p", "auth.refused", { roles: roleList(roles), role: { key: `role.${user.role}` } }),
    again,
  );
  frame.main.replaceChildren(box);
}

function roleList(roles) {
  return roles.map((role) => ({ key: `role.${role}` }));
}
