// A viewer session with the official Socket.IO client: connect to /live with a token, join a
// stream, post a comment, hear it broadcast, like, and print what happened as one JSON line.
// Usage: node viewer.mjs <base url> <token> <stream id>
import { io } from "socket.io-client";

const [url, token, streamId] = process.argv.slice(2);
const seen = [];
const socket = io(`${url}/live`, { auth: { token }, transports: ["websocket"], reconnection: false });

function fail(message) {
  console.log(JSON.stringify({ ok: false, error: message, seen }));
  process.exit(1);
}

setTimeout(() => fail("timed out"), 15000);
socket.on("connect_error", (err) => fail(`connect_error: ${err.message}`));
socket.onAny((name, data) => seen.push(name));
socket.on("comment", (data) => {
  if (data.text !== "hello from socket.io-client") return;
  socket.emit("like", { count: 2 }, (likeAck) => {
    socket.emit("leave", {}, (leaveAck) => {
      console.log(JSON.stringify({ ok: true, comment: data, like: likeAck, leave: leaveAck, seen }));
      socket.disconnect();
      process.exit(0);
    });
  });
});
socket.on("connect", () => {
  socket.emit("join", { stream_id: streamId }, (ack) => {
    if (!ack || !ack.state) fail(`join: ${JSON.stringify(ack)}`);
    socket.emit("comment", { text: "hello from socket.io-client" }, (sent) => {
      if (!sent || !sent.comment) fail(`comment: ${JSON.stringify(sent)}`);
    });
  });
});
