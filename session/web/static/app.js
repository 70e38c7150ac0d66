// lanmsg chat page. It speaks the two-way extension (PROTOCOL.md) over a
// WebSocket at /ws: each message sent is one frame's payload (the hello,
// then text or control frames), each message received one JSON event.
//
// Text from the network is only ever inserted with textContent, never as
// HTML. Each event type has a handler in `handlers`; new events (rooms,
// history, direct messages) are added there, and new commands in `send*`.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  ws: null,
  me: "",          // the name the server gave us
  room: "",
  people: new Set(),
  more: 0,         // people the server did not list
  joined: false,
};

// ---- security notice ----------------------------------------------------

function showSecurity() {
  const el = $("security");
  if (location.protocol === "https:") {
    el.textContent = "Encrypted: this page and its messages travel over HTTPS.";
    el.className = "secure";
  } else {
    el.textContent = "Not encrypted: this page uses plain HTTP, so anyone on this network can read what is said here.";
    el.className = "plain";
  }
}

// ---- rendering (text only) ---------------------------------------------

function time(t) {
  const d = t ? new Date(t) : new Date();
  if (isNaN(d)) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function addLine(kind, parts, t) {
  const log = $("log");
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const li = document.createElement("li");
  li.className = kind;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = time(t) + " ";
  li.append(meta);
  for (const [cls, text] of parts) {
    const s = document.createElement("span");
    if (cls) s.className = cls;
    s.textContent = text;
    li.append(s);
  }
  log.append(li);
  if (atEnd) li.scrollIntoView({ block: "end" });
  return li;
}

function say(name, text, t, extra) {
  return addLine("msg" + (extra ? " " + extra : ""), [["who", name], ["", ": " + text]], t);
}

function note(text, t) {
  addLine("event", [["", text]], t);
}

function status(text) {
  $("status").textContent = text;
}

function renderWho() {
  const ul = $("who");
  ul.replaceChildren();
  for (const n of [...state.people].sort()) {
    const li = document.createElement("li");
    li.textContent = n === state.me ? n + " (you)" : n;
    ul.append(li);
  }
  if (state.more > 0) {
    const li = document.createElement("li");
    li.textContent = "and " + state.more + " more";
    ul.append(li);
  }
  $("count").textContent = "(" + (state.people.size + state.more) + ")";
}

// names lists an event's people: "name", or "names" and "more".
function names(ev) {
  if (ev.names && ev.names.length) return ev.names;
  return ev.name ? [ev.name] : [];
}

// text is a message's text: "text", or base64 "data" (bytes that JSON
// would escape badly), decoded as UTF-8.
function text(ev) {
  if (ev.data) {
    const bin = atob(ev.data);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  }
  return ev.text || "";
}

// ---- events from the server ---------------------------------------------

const handlers = {
  welcome(ev) {
    state.me = ev.name || state.me;
    state.people = new Set(ev.names || []);
    state.more = ev.more || 0;
    state.joined = true;
    renderWho();
    status("You are " + state.me + ".");
    note("You joined as " + state.me + ".", ev.time);
    $("text").focus();
  },
  msg(ev) {
    say(ev.name, text(ev), ev.time);
  },
  join(ev) {
    const ns = names(ev).filter((n) => n !== state.me || !state.people.has(n));
    for (const n of names(ev)) state.people.add(n);
    renderWho();
    if (ns.length) note(ns.join(", ") + (ev.more ? " and " + ev.more + " more" : "") + " joined.", ev.time);
  },
  leave(ev) {
    for (const n of names(ev)) state.people.delete(n);
    renderWho();
    note(names(ev).join(", ") + (ev.more ? " and " + ev.more + " more" : "") + " left.", ev.time);
  },
  who(ev) {
    state.people = new Set(ev.names || []);
    state.more = ev.more || 0;
    renderWho();
  },
  ping() {
    sendFrame("!PONG");
  },
  ack() {},
  error(ev) {
    addLine("error", [["", "Server: " + (ev.text || "refused")]], ev.time);
  },
};

// ---- frames to the server -----------------------------------------------

function sendFrame(payload) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(payload);
    return true;
  }
  return false;
}

// sendText sends a chat message: text starting with "!" gets one more "!"
// (control frames start with "!").
function sendText(t) {
  return sendFrame(t.startsWith("!") ? "!" + t : t);
}

function connect(name, room) {
  if (state.ws) state.ws.close();
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const ws = new WebSocket(url);
  state.ws = ws;
  state.room = room;
  status("Connecting…");
  ws.onopen = () => {
    const hello = { v: 2, name: name, chat: true };
    if (room && room !== $("room").dataset.default) hello.room = room;
    ws.send("!HELLO " + JSON.stringify(hello));
  };
  ws.onmessage = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    const h = handlers[ev.t];
    if (h) h(ev);
  };
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.joined = false;
    status("Disconnected" + (e.reason ? ": " + e.reason : "") + ". Press Join to connect again.");
    $("join").hidden = false;
  };
}

// ---- the forms ----------------------------------------------------------

function init() {
  showSecurity();
  const name = $("name");
  try {
    name.value = localStorage.getItem("lanmsg-name") || "";
  } catch {}
  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    const n = name.value.trim();
    if (!n) {
      name.focus();
      return;
    }
    try {
      localStorage.setItem("lanmsg-name", n);
    } catch {}
    $("chat").hidden = false;
    $("join").hidden = true;
    connect(n, $("room").value.trim());
  });
  $("say").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("text");
    const t = input.value;
    if (!t) return;
    if (!sendText(t)) {
      status("Not connected: your message was not sent.");
      return;
    }
    say(state.me, t, null, "mine");
    input.value = "";
  });
}

init();
