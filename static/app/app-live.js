// Live: #live lists the live and upcoming streams (GET /api/streams); #live/<id> is the room
// over the /live socket (docs/events.md): the video (the shared player, ../js/player.js:
// hls.js or the browser's own HLS player, muted until the viewer unmutes it; a placeholder with
// the reason when it cannot play), pinned products (with a "Sold out" badge when the host
// marks one), comments, likes, the poll,
// questions and drops with a claim button and a countdown. The client keeps the last offset it
// saw; when the socket reconnects it joins again with that offset and applies the events it
// missed (each offset once, in order), or the whole state when the server says it is too far
// behind.
import { api, errorText } from "../js/api.js";
import { element, formatMoney, formatTime, has, label, t } from "../js/i18n.js";
import { Player } from "../js/player.js";
import { connect } from "../js/socket.js";

const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** A refusal of the room for the reader: the app's own text for the room's codes (SLOW_MODE
 *  says how long to wait), else the API's errorText. */
function refusal(error) {
  const key = `app.live.error.${error.code}`;
  if (!has(key)) return errorText(error);
  const wait = error.details && error.details.retry_after;
  return t(key, { seconds: Math.ceil(wait || 0) });
}

export async function show(view, ctx) {
  if (ctx.args[0]) return showRoom(view, ctx.args[0], ctx);
  return showList(view, ctx);
}

async function showList(view) {
  const section = document.createElement("section");
  section.setAttribute("aria-labelledby", "live-title");
  section.append(label("h2", "app.live.title", null, { id: "live-title" }));
  const [live, upcoming] = await Promise.all([
    api("GET", "/api/streams?status=live&limit=50"),
    api("GET", "/api/streams?status=scheduled&limit=50"),
  ]);
  for (const [key, page, id] of [
    ["app.live.now", live, "live-now"],
    ["app.live.upcoming", upcoming, "live-upcoming"],
  ]) {
    section.append(label("h3", key));
    const list = document.createElement("ul");
    list.className = "streams";
    list.id = id;
    for (const stream of page.items) {
      const item = document.createElement("li");
      item.className = "card stream";
      item.dataset.streamId = stream.id;
      const link = document.createElement("a");
      link.href = `#live/${encodeURIComponent(stream.id)}`;
      link.textContent = stream.title;
      item.append(link, document.createTextNode(` · ${stream.brand}`));
      item.append(label("p", "app.live.starts", { time: formatTime(stream.starts_at, ZONE) }));
      list.append(item);
    }
    if (!page.items.length) list.append(label("li", "app.live.none"));
    section.append(list);
  }
  view.replaceChildren(section);
}

function showRoom(view, streamId, { user }) {
  const guest = user.role === "guest";
  const room = element("section", { class: "live-room", id: "live-room", "aria-labelledby": "room-title" });
  const title = element("h2", { id: "room-title" });
  const player = new Player({ id: "room-player", keys: "app.live.player", videoId: "room-video", className: "room-player", autoplay: true });
  const status = element("p", { id: "room-status", role: "status" });
  const announcement = element("p", { id: "room-announcement", class: "notice", role: "status" });
  announcement.hidden = true;
  const pinned = element("ul", { id: "room-pinned", class: "pinned" });
  const pollBox = element("div", { id: "room-poll", class: "card" });
  pollBox.hidden = true;
  const dropBox = element("div", { id: "room-drop", class: "card" });
  dropBox.hidden = true;
  const comments = element("ol", { id: "room-comments", class: "comments", "aria-live": "polite" });
  const questions = element("ol", { id: "room-questions", class: "questions" });
  const likes = element("p", { id: "room-likes" });

  // Writing (comment, ask, like) is for shoppers; a guest watches.
  const writeForm = (name, key, event) => {
    const form = element("form", { id: `room-${name}-form`, class: "room-form", novalidate: "" });
    const input = element("input", { id: `room-${name}`, name: "text", maxlength: "200", autocomplete: "off" });
    const inputLabel = label("label", key, null, { for: input.id });
    const send = label("button", `${key}.send`, null, { type: "submit" });
    const error = element("p", { class: "field-error", role: "alert", id: `room-${name}-error` });
    error.hidden = true;
    form.append(inputLabel, input, send, error);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.hidden = true;
      const answer = await call(event, { text: input.value });
      if (answer.error) {
        error.textContent = refusal(answer.error);
        error.hidden = false;
      } else input.value = "";
    });
    return form;
  };
  const likeButton = label("button", "app.live.like", null, { type: "button", id: "room-like" });
  likeButton.addEventListener("click", () => call("like", { count: 1 }));
  const parts = [title, status, player.element, announcement];
  parts.push(label("h3", "app.live.pinned"), pinned, pollBox, dropBox, likes);
  if (!guest) parts.push(likeButton);
  parts.push(label("h3", "app.live.comments"), comments);
  if (!guest) parts.push(writeForm("comment", "app.live.comment", "comment"));
  else parts.push(label("p", "app.live.guest_note"));
  parts.push(label("h3", "app.live.questions"), questions);
  if (!guest) parts.push(writeForm("ask", "app.live.ask", "ask"));
  room.append(...parts);
  view.replaceChildren(room);

  const socket = connect("/live");
  // Tests and the curious reach the socket.io-client socket here (as the funnel view does).
  room.liveSocket = socket;
  const call = (event, data) =>
    new Promise((resolve) => {
      socket.timeout(10_000).emit(event, data, (err, answer) => {
        resolve(err ? { error: { code: "timeout", message: t("app.live.timeout") } } : answer);
      });
    });

  let offset = null;
  let timer = null;
  const seen = new Set();
  let state = null;

  const drawStream = () => {
    title.textContent = state.stream.title;
    status.replaceChildren(label("span", `app.live.status.${state.stream.status}`));
    player.play(state.stream.playback_url);
  };
  const drawPinned = () => {
    pinned.replaceChildren();
    for (const product of state.pinned) {
      const item = element("li", { class: "card product", "data-product-id": product.id });
      if (product.image) {
        const img = element("img", {
          src: `/api/streams/${encodeURIComponent(streamId)}/products/${encodeURIComponent(product.id)}/thumb.jpg`,
          alt: product.name,
          width: String(product.image.thumb_width),
          height: String(product.image.thumb_height),
        });
        item.append(img);
      }
      item.append(element("strong", {}, product.name), document.createTextNode(` ${formatMoney(product.price_fen)}`));
      if (product.sold_out) item.append(document.createTextNode(" "), label("span", "app.live.sold_out", null, { class: "badge sold-out" }));
      pinned.append(item);
    }
    if (!state.pinned.length) pinned.append(label("li", "app.live.no_pins"));
  };
  const drawComment = (comment) => {
    if (comments.querySelector(`[data-comment-id="${CSS.escape(comment.id)}"]`)) return;
    comments.append(element("li", { "data-comment-id": comment.id }, comment.text));
    while (comments.children.length > 50) comments.firstElementChild.remove();
  };
  const drawPoll = () => {
    const poll = state.poll;
    pollBox.hidden = !poll;
    if (!poll) return;
    const fieldset = element("fieldset", { id: "poll-options" });
    fieldset.append(element("legend", {}, poll.question));
    poll.options.forEach((option, i) => {
      const votes = (poll.tallies || [])[i] || 0;
      const button = element("button", { type: "button", "data-option": String(i) });
      button.textContent = t("app.live.vote", { option, votes });
      button.disabled = guest || poll.status === "closed";
      button.addEventListener("click", async () => {
        const answer = await call("vote", { poll_id: poll.id, option: i });
        if (answer.error) pollNote.replaceChildren(document.createTextNode(refusal(answer.error)));
        else {
          poll.tallies = answer.tallies;
          poll.voted = i;
          drawPoll();
        }
      });
      fieldset.append(button);
    });
    const pollNote = element("p", { role: "status", id: "poll-note" });
    if (poll.voted !== undefined) pollNote.append(label("span", "app.live.voted"));
    pollBox.replaceChildren(fieldset, pollNote);
  };
  const drawDrop = () => {
    clearInterval(timer);
    const drop = state.drop;
    dropBox.hidden = !drop;
    if (!drop) return;
    const heading = label("h3", "app.live.drop", { title: drop.title });
    const remaining = label("p", "app.live.remaining", { count: drop.remaining, quantity: drop.quantity }, { id: "drop-remaining" });
    const countdown = element("p", { id: "drop-countdown" });
    const claim = label("button", "app.live.claim", null, { type: "button", id: "drop-claim" });
    const result = element("p", { role: "status", id: "drop-result" });
    const open = () => drop.status !== "sold_out" && drop.remaining > 0 && drop.ends_at * 1000 > Date.now();
    const tick = () => {
      const left = Math.max(0, Math.ceil(drop.ends_at - Date.now() / 1000));
      countdown.replaceChildren(label("span", "app.live.countdown", { seconds: left }));
      claim.disabled = guest || !open() || drop.won;
      if (!left) clearInterval(timer);
    };
    claim.addEventListener("click", async () => {
      const answer = await call("claim", { drop_id: drop.id });
      if (answer.error) result.replaceChildren(document.createTextNode(refusal(answer.error)));
      else {
        drop.won = true;
        drop.remaining = answer.remaining;
        result.replaceChildren(label("span", "app.live.won", { title: answer.coupon.title || drop.title }), document.createTextNode(" "), label("a", "app.live.to_wallet", null, { href: `#wallet/${encodeURIComponent(answer.coupon.id)}` }));
        remaining.replaceChildren(document.createTextNode(t("app.live.remaining", { count: drop.remaining, quantity: drop.quantity })));
        tick();
      }
    });
    dropBox.replaceChildren(heading, remaining, countdown, claim, result);
    tick();
    timer = setInterval(tick, 1000);
  };
  const drawQuestions = () => {
    questions.replaceChildren();
    const open = state.questions.filter((q) => q.state !== "answered");
    open.sort((a, b) => (b.upvotes || 0) - (a.upvotes || 0));
    for (const question of open) {
      const item = element("li", { "data-question-id": question.id });
      item.append(element("span", {}, question.text), document.createTextNode(" "));
      const up = element("button", { type: "button", class: "upvote" });
      up.textContent = t("app.live.upvote", { count: question.upvotes || 0 });
      up.disabled = guest;
      up.addEventListener("click", async () => {
        const answer = await call("upvote", { question_id: question.id });
        if (answer.error) up.after(element("span", { role: "alert", class: "field-error" }, refusal(answer.error)));
        else {
          question.upvotes = answer.upvotes;
          drawQuestions();
        }
      });
      item.append(up);
      questions.append(item);
    }
  };
  const drawAll = () => {
    drawStream();
    if (state.announcement) {
      announcement.textContent = state.announcement.text;
      announcement.hidden = false;
    }
    drawPinned();
    comments.replaceChildren();
    for (const comment of state.comments) drawComment(comment);
    drawPoll();
    drawDrop();
    drawQuestions();
  };

  // One event from the room (live or recovered): each offset once.
  const apply = (name, data) => {
    if (data && typeof data.offset === "number") {
      if (seen.has(data.offset)) return;
      seen.add(data.offset);
      offset = offset === null ? data.offset : Math.max(offset, data.offset);
    }
    if (!state) return;
    if (name === "stream_status") {
      state.stream.status = data.status;
      drawStream();
    } else if (name === "pinned") {
      state.pinned = data.products;
      drawPinned();
    } else if (name === "product") {
      // A sold-out mark changed: in the products and among the pins (`pinned` follows).
      const { offset: _at, ...product } = data;
      const swap = (list) => list.map((p) => (p.id === product.id ? { ...p, ...product } : p));
      state.products = swap(state.products || []);
      state.pinned = swap(state.pinned);
      drawPinned();
    } else if (name === "announcement") {
      announcement.textContent = data.text;
      announcement.hidden = false;
    } else if (name === "comment") drawComment(data);
    else if (name === "comment_deleted") comments.querySelector(`[data-comment-id="${CSS.escape(data.comment_id)}"]`)?.remove();
    else if (name === "poll") {
      const voted = state.poll && state.poll.id === data.id ? state.poll.voted : undefined;
      state.poll = { ...data, voted };
      drawPoll();
    } else if (name === "poll_tallies") {
      if (state.poll && state.poll.id === data.poll_id) {
        state.poll.tallies = data.tallies;
        drawPoll();
      }
    } else if (name === "question") {
      state.questions.push(data);
      drawQuestions();
    } else if (name === "question_answered") {
      state.questions = state.questions.filter((q) => q.id !== data.question_id);
      drawQuestions();
    } else if (name === "drop") {
      state.drop = data;
      drawDrop();
    } else if (name === "drop_sold_out") {
      if (state.drop && state.drop.id === data.drop_id) {
        state.drop.status = "sold_out";
        state.drop.remaining = 0;
        drawDrop();
      }
    } else if (name === "likes") likes.replaceChildren(label("span", "app.live.likes", { total: data.total }));
  };
  const EVENTS = ["stream_status", "pinned", "product", "announcement", "comment", "comment_deleted", "comment_pinned", "poll", "poll_tallies", "question", "question_answered", "drop", "drop_sold_out", "slow_mode", "likes"];
  for (const name of EVENTS) socket.on(name, (data) => apply(name, data));

  const join = async () => {
    const answer = await call("join", offset === null ? { stream_id: streamId } : { stream_id: streamId, offset });
    if (answer.error) {
      room.replaceChildren(element("p", { role: "alert", class: "card" }, refusal(answer.error)));
      return;
    }
    if (answer.recovered) {
      // The missed events, in the order of their offsets.
      const missed = [...answer.events].sort((a, b) => a.offset - b.offset);
      for (const { offset: at, event, data } of missed) apply(event, { ...data, offset: at });
      room.dataset.recovered = String(Number(room.dataset.recovered || 0) + 1);
    } else {
      state = answer.state;
      seen.clear();
      offset = state.offset;
      drawAll();
    }
    room.dataset.offset = String(offset);
    room.dataset.joined = "true";
  };
  socket.on("connect", join);
  return () => {
    clearInterval(timer);
    player.close();
    socket.close();
  };
}
