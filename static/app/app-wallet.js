// The wallet: the shopper's coupons (GET /api/wallet) with their card image, status and where
// they can be used; #wallet/<id> shows one coupon's QR full screen with its short code for the
// till. Images need the token, so they are fetched with apiFile (Authorization header, never
// a token in a URL) and shown through object URLs, revoked when the view goes.
import { api, apiFile, errorText } from "../js/api.js";
import { formatTime, label, language } from "../js/i18n.js";

const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

async function objectUrl(path, urls) {
  const blob = await (await apiFile(path, "image/png")).blob();
  const url = URL.createObjectURL(blob);
  urls.push(url);
  return url;
}

export async function show(view, { args, navigate, state }) {
  const urls = [];
  const teardown = [() => urls.forEach((url) => URL.revokeObjectURL(url))];
  if (args[0]) await showQr(view, args[0], urls, navigate);
  else {
    await showList(view, urls, navigate);
    teardown.push(state.listen((kind) => kind === "coupon" && showList(view, urls, navigate)));
    // The cards are drawn in the reader's language: a switch fetches them again.
    const redraw = () => showList(view, urls, navigate);
    document.addEventListener("languagechange", redraw);
    teardown.push(() => document.removeEventListener("languagechange", redraw));
  }
  return () => teardown.forEach((fn) => fn());
}

async function showList(view, urls, navigate) {
  const section = document.createElement("section");
  section.setAttribute("aria-labelledby", "wallet-title");
  section.append(label("h2", "app.wallet.title", null, { id: "wallet-title" }));
  let page;
  try {
    page = await api("GET", "/api/wallet?limit=50");
  } catch (error) {
    section.append(label("p", "app.map.error", { message: errorText(error) }, { role: "alert" }));
    view.replaceChildren(section);
    return;
  }
  const list = document.createElement("ul");
  list.className = "coupons";
  list.id = "coupon-list";
  for (const coupon of page.items) {
    const item = document.createElement("li");
    item.className = `card coupon ${coupon.status}`;
    item.dataset.couponId = coupon.id;
    const title = document.createElement("h3");
    title.textContent = coupon.title;
    const card = document.createElement("img");
    card.className = "coupon-card";
    card.width = 300;
    card.height = 450;
    card.alt = "";
    card.setAttribute("data-i18n-attr", "alt:app.wallet.card_alt");
    item.append(
      title,
      label("p", `app.wallet.status.${coupon.status}`, null, { class: `badge ${coupon.status}` }),
      label("p", "app.wallet.where", { campaign: coupon.campaign_name }),
    );
    if (coupon.store_name) item.append(label("p", "app.wallet.earned_at", { store: coupon.store_name }));
    item.append(label("p", "app.wallet.expires", { when: formatTime(coupon.expires_at, ZONE) }), card);
    if (coupon.status === "issued") {
      const open = label("a", "app.wallet.show_qr", null, { href: `#wallet/${encodeURIComponent(coupon.id)}`, class: "button" });
      item.append(open);
    }
    list.append(item);
    objectUrl(`/api/wallet/${coupon.id}/card.png?lang=${language()}`, urls)
      .then((url) => {
        card.src = url;
        card.alt = `${coupon.title}`;
      })
      .catch((error) => item.append(label("p", "app.map.error", { message: errorText(error) }, { role: "alert" })));
  }
  section.append(list);
  if (!page.items.length) section.append(label("p", "app.wallet.empty", null, { id: "wallet-empty" }));
  view.replaceChildren(section);
  void navigate;
}

async function showQr(view, id, urls, navigate) {
  const section = document.createElement("section");
  section.className = "qr-full";
  section.setAttribute("aria-labelledby", "qr-title");
  let coupon;
  try {
    coupon = await api("GET", `/api/wallet/${encodeURIComponent(id)}`);
  } catch (error) {
    section.append(label("p", "app.map.error", { message: errorText(error) }, { role: "alert" }));
    view.replaceChildren(section);
    return;
  }
  const heading = document.createElement("h2");
  heading.id = "qr-title";
  heading.textContent = coupon.title;
  heading.tabIndex = -1;
  const qr = document.createElement("img");
  qr.id = "qr-image";
  qr.className = "qr-image";
  qr.width = 320;
  qr.height = 320;
  qr.alt = "";
  const code = document.createElement("p");
  code.className = "short-code";
  code.id = "short-code";
  code.textContent = coupon.code;
  const close = label("button", "app.wallet.close_qr", null, { type: "button", id: "qr-close" });
  close.addEventListener("click", () => navigate("wallet"));
  section.append(
    heading,
    qr,
    label("p", "app.wallet.code_label"),
    code,
    label("p", "app.wallet.brightness", null, { class: "hint" }),
    close,
  );
  view.replaceChildren(section);
  heading.focus();
  qr.src = await objectUrl(`/api/wallet/${encodeURIComponent(id)}/qr.png`, urls);
  qr.alt = coupon.code;
}
