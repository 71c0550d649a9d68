// The live screen's chat as a moderation queue (newest first: delete, pin, mute, ban), slow
// mode, banned words, and the viewers' questions sorted by upvotes with "answered". Drawn from
// the room's state (`state` ack) and kept current by the room's broadcasts to /host
// (`comment`, `comment_deleted`, `comment_pinned`, `question`, `question_answered`,
// `slow_mode`) and the 2-second `feedback` (the questions' upvotes).
import { clearErrors } from "../js/api.js";
import { formatTime, label, t } from "../js/i18n.js";
import { DEFAULT_TZ, field, formAlert, options } from "../console/campaign-util.js";

const KEEP = 50; // comments kept in the queue, as the server keeps for a joining viewer
const SLOW = [0, 5, 10, 30, 60, 120, 300];
const MUTE_S = 300;

export class Moderation {
  /** `act(name, payload)` sends a /host event and resolves with its ack (or null, the
   *  refusal shown by the screen). `readOnly` (an admin watching): the queue and the
   *  questions without the settings and the buttons. */
  constructor(act, readOnly = false) {
    this.act = act;
    this.readOnly = readOnly;
    this.comments = [];
    this.questions = [];
    this.pinnedId = null;
    this.element = document.createElement("section");
    this.element.className = "card moderation";
    this.element.setAttribute("aria-labelledby", "chat-title");
    this.queue = document.createElement("ul");
    this.queue.id = "chat-queue";
    this.queue.className = "chat-queue";
    this.queue.setAttribute("aria-labelledby", "chat-title");
    this.questionList = document.createElement("ol");
    this.questionList.id = "question-list";
    this.questionList.setAttribute("aria-labelledby", "questions-title");
    const settings = this.settingsForm();
    this.element.append(
      label("h2", "studio.chat.title", null, { id: "chat-title" }),
      ...(readOnly ? [] : [settings]),
      this.queue,
      label("h2", "studio.questions.title", null, { id: "questions-title" }),
      this.questionList,
    );
  }

  /** Draw everything from the room's state. */
  load(state) {
    this.comments = [...(state.comments || [])].reverse().slice(0, KEEP);
    this.pinnedId = state.pinned_comment ? state.pinned_comment.id : null;
    this.questions = state.questions || [];
    this.muted = new Map((state.muted || []).map((m) => [m.viewer_id, m.until]));
    this.banned = new Set(state.banned || []);
    this.slow.value = String(state.slow_mode_s || 0);
    if (!SLOW.includes(state.slow_mode_s || 0)) options(this.slow, [[String(state.slow_mode_s), null, String(state.slow_mode_s)]]);
    this.slow.value = String(state.slow_mode_s || 0);
    this.words.value = (state.banned_words || []).join("\n");
    this.drawQueue();
    this.drawQuestions();
  }

  /** A room broadcast heard on /host. */
  event(name, data) {
    if (name === "comment") {
      if (this.comments.some((c) => c.id === data.id)) return;
      this.comments = [data, ...this.comments].slice(0, KEEP);
      this.drawQueue();
    } else if (name === "comment_deleted") {
      this.comments = this.comments.filter((c) => c.id !== data.comment_id);
      if (this.pinnedId === data.comment_id) this.pinnedId = null;
      this.drawQueue();
    } else if (name === "comment_pinned") {
      this.pinnedId = data.id;
      this.drawQueue();
    } else if (name === "question") {
      if (!this.questions.some((q) => q.id === data.id)) this.questions = [...this.questions, data];
      this.drawQuestions();
    } else if (name === "question_answered") {
      this.questions = this.questions.filter((q) => q.id !== data.question_id);
      this.drawQuestions();
    } else if (name === "slow_mode") {
      this.slow.value = String(data.seconds);
    }
  }

  /** The feedback's open questions with most upvotes. */
  feedback(questions) {
    if (!Array.isArray(questions)) return;
    const same = JSON.stringify(questions.map((q) => [q.id, q.upvotes])) === JSON.stringify(this.sorted().map((q) => [q.id, q.upvotes]));
    this.questions = questions;
    if (!same) this.drawQuestions();
  }

  sorted() {
    return [...this.questions].sort((a, b) => b.upvotes - a.upvotes || a.at - b.at);
  }

  settingsForm() {
    const wrap = document.createElement("div");
    wrap.className = "chat-settings";
    const slowForm = document.createElement("form");
    const slow = field("seconds", "studio.chat.slow_mode", { tag: "select" });
    this.slow = slow.querySelector("select");
    options(this.slow, SLOW.map((s) => [String(s), null, s ? t("studio.chat.slow_s", { seconds: s }) : t("studio.chat.slow_off")]), "0");
    const slowAlert = formAlert();
    slowForm.append(slow, slowAlert, label("button", "studio.chat.slow_apply", null, { type: "submit", id: "slow-apply" }));
    slowForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(slowForm);
      await this.act("slow_mode", { seconds: Number(this.slow.value) });
    });
    const wordsForm = document.createElement("form");
    const words = field("words", "studio.chat.banned_words", { tag: "textarea", hint: "studio.chat.banned_hint", attrs: { rows: "3" } });
    this.words = words.querySelector("textarea");
    const saved = label("p", "studio.chat.words_saved", null, { role: "status", class: "hint" });
    saved.hidden = true;
    wordsForm.append(words, label("button", "studio.chat.words_save", null, { type: "submit", id: "words-save" }), saved);
    wordsForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      saved.hidden = true;
      const list = this.words.value.split(/[\n,]+/).map((w) => w.trim()).filter(Boolean);
      const ack = await this.act("banned_words", { words: list });
      if (ack) {
        this.words.value = ack.words.join("\n");
        saved.hidden = false;
      }
    });
    wrap.append(slowForm, wordsForm);
    return wrap;
  }

  drawQueue() {
    const focused = document.activeElement?.dataset?.key;
    this.queue.replaceChildren();
    if (!this.comments.length) {
      this.queue.append(label("li", "studio.chat.none", null, { class: "hint" }));
      return;
    }
    for (const comment of this.comments) {
      const li = document.createElement("li");
      li.dataset.commentId = comment.id;
      if (comment.id === this.pinnedId) li.classList.add("pinned");
      const who = document.createElement("span");
      who.className = "chat-who";
      who.textContent = comment.name || comment.viewer_id.slice(0, 8);
      const time = document.createElement("span");
      time.className = "hint";
      time.textContent = formatTime(comment.at, DEFAULT_TZ, { timeStyle: "medium" });
      const text = document.createElement("p");
      text.className = "chat-text";
      text.textContent = comment.text;
      const row = document.createElement("div");
      row.className = "actions";
      const button = (key, action, payload, after) => {
        if (this.readOnly) return;
        const el = label("button", key, { name: who.textContent }, { type: "button", "data-key": `${key}:${comment.id}` });
        el.addEventListener("click", async () => {
          const ack = await this.act(action, payload);
          if (ack && after) after(ack);
        });
        row.append(el);
      };
      button("studio.chat.delete", "delete_comment", { comment_id: comment.id }, () => this.event("comment_deleted", { comment_id: comment.id }));
      if (comment.id !== this.pinnedId) {
        button("studio.chat.pin", "pin_comment", { comment_id: comment.id }, (ack) => this.event("comment_pinned", ack));
      } else {
        li.prepend(label("span", "studio.chat.pinned", null, { class: "status-badge" }));
      }
      if (this.banned.has(comment.viewer_id)) {
        row.append(label("span", "studio.chat.banned", null, { class: "hint" }));
      } else {
        button("studio.chat.mute", "mute", { viewer_id: comment.viewer_id, seconds: MUTE_S }, (ack) => {
          this.muted.set(ack.viewer_id, ack.muted_until);
          this.drawQueue();
        });
        button("studio.chat.ban", "ban", { viewer_id: comment.viewer_id }, (ack) => {
          this.banned.add(ack.viewer_id);
          this.drawQueue();
        });
      }
      const until = this.muted.get(comment.viewer_id);
      if (until && until * 1000 > Date.now() && !this.banned.has(comment.viewer_id)) {
        row.append(label("span", "studio.chat.muted", null, { class: "hint" }));
      }
      li.append(who, " ", time, text, row);
      this.queue.append(li);
    }
    if (focused) this.queue.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  }

  drawQuestions() {
    this.questionList.replaceChildren();
    const questions = this.sorted();
    if (!questions.length) {
      this.questionList.append(label("li", "studio.questions.none", null, { class: "hint" }));
      return;
    }
    for (const question of questions) {
      const li = document.createElement("li");
      li.dataset.questionId = question.id;
      const text = document.createElement("span");
      text.textContent = question.text;
      const votes = label("span", "studio.questions.upvotes", { count: question.upvotes }, { class: "status-badge" });
      const answered = label("button", "studio.questions.answered", { text: question.text.slice(0, 40) }, { type: "button" });
      answered.addEventListener("click", async () => {
        if (await this.act("answer", { question_id: question.id })) {
          this.event("question_answered", { question_id: question.id });
          this.questionList.focus?.();
        }
      });
      li.append(votes, " ", text);
      if (!this.readOnly) li.append(" ", answered);
      this.questionList.append(li);
    }
  }
}
