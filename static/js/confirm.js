// Ask before something that cannot be undone (ending a campaign or a stream): a modal <dialog>
// whose "no" button has the focus; Escape or "no" cancels and gives the focus back to the
// button that opened it.
import { label } from "./i18n.js";

/** Open the dialog: `titleKey` (with `titleParams`) and `textKey` say what will happen,
 *  `yesKey` / `noKey` name the buttons, `onYes()` runs when confirmed, `opener` gets the focus
 *  back on a cancel. */
export function askToConfirm({ opener, titleKey, titleParams = null, textKey, yesKey, noKey, onYes }) {
  const dialog = document.createElement("dialog");
  dialog.className = "confirm";
  dialog.setAttribute("aria-labelledby", "end-title");
  dialog.setAttribute("aria-describedby", "end-text");
  const yes = label("button", yesKey, null, { type: "button", class: "danger", id: "end-confirm" });
  const no = label("button", noKey, null, { type: "button", id: "end-cancel" });
  const row = document.createElement("div");
  row.className = "actions";
  row.append(no, yes);
  dialog.append(
    label("h3", titleKey, titleParams, { id: "end-title" }),
    label("p", textKey, null, { id: "end-text" }),
    row,
  );
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  no.addEventListener("click", () => {
    close();
    opener.focus();
  });
  dialog.addEventListener("cancel", () => setTimeout(() => opener.focus()));
  dialog.addEventListener("close", () => dialog.remove());
  yes.addEventListener("click", () => {
    close();
    onYes();
  });
  document.body.append(dialog);
  dialog.showModal();
  no.focus();
}
