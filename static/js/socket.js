// A Socket.IO connection of a console (the official socket.io-client), with the tab's token
// and a banner while it is lost: the client reconnects by itself with backoff, and the banner
// goes when it is back.
import { io } from "/vendor/socket.io-client/socket.io.esm.min.js";
import { token } from "./api.js";
import { label } from "./i18n.js";

/** Connect to a namespace ("/marketer", "/host", …). `auth` adds to the handshake's auth
 *  (the host console's `stream_id`). The returned socket is socket.io-client's; call
 *  socket.close() when the view that opened it goes. */
export function connect(namespace, auth = {}) {
  const banner = label("p", "socket.lost", null, { role: "alert", class: "socket-banner" });
  banner.hidden = true;
  document.body.prepend(banner);
  const socket = io(namespace, {
    transports: ["websocket"],
    auth: (send) => send({ ...auth, token: token() }),
  });
  socket.on("disconnect", (reason) => {
    // A close asked for by this page is not a lost connection.
    if (reason !== "io client disconnect") banner.hidden = false;
  });
  socket.on("connect_error", () => {
    banner.hidden = false;
  });
  socket.on("connect", () => {
    banner.hidden = true;
  });
  const close = socket.close.bind(socket);
  socket.close = () => {
    banner.remove();
    return close();
  };
  return socket;
}
